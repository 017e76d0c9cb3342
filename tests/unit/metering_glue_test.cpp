// The glue of issue 16: ResponseMeter fed through a real MessageParser (as
// the connection feeds it), the per-request counters and pull histograms in
// the metrics shards, and bounded label sets under hostile input.
#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/client_family.h"
#include "core/http_head.h"
#include "core/metrics.h"
#include "core/pull_sessions.h"
#include "core/response_meter.h"
#include "metering_test_util.h"
#include "metrics_test_util.h"
#include "net/metering.h"

namespace regmeter {
namespace {

using namespace std::chrono_literals;
using testing::has_line;
using testing::lines_of;
using testing::lines_starting;
using testing::record;
using testing::fake_digest;
using testing::FakeBlob;
using testing::oci_image_manifest;

// Parses `head` as a response and feeds `body` (already framed) through the
// parser in pieces of `piece` bytes, the meter watching; completes the meter
// when the parser says the message ended.
struct Fed {
  RegistryError error;
  std::optional<Manifest> manifest;
  std::string content_digest;
  bool complete;
};
Fed feed_response(Handler handler, Method method, const std::string& head, const std::string& body,
                  std::size_t piece = 7, bool finish = true) {
  MessageParser parser(MessageParser::Kind::response);
  ResponseMeter meter;
  parser.set_payload_observer(&meter);
  parser.reset(method == Method::head);
  EXPECT_TRUE(parser.parse_head(head)) << parser.error();
  meter.begin(handler, method, parser.head());
  for (std::size_t at = 0; at < body.size() && !parser.complete(); at += piece) {
    auto progress = parser.parse_body(std::string_view(body).substr(at, piece));
    EXPECT_TRUE(progress.ok) << parser.error();
  }
  bool complete = parser.complete();
  if (complete && finish) meter.complete();
  return {meter.error(), meter.manifest(), std::string(meter.content_digest()), complete};
}

std::string chunked(const std::string& payload, std::size_t chunk) {
  std::string out;
  for (std::size_t at = 0; at < payload.size(); at += chunk) {
    auto part = payload.substr(at, chunk);
    std::ostringstream size;
    size << std::hex << part.size();
    out += size.str() + "\r\n" + part + "\r\n";
  }
  return out + "0\r\n\r\n";
}

const std::string kManifestUnknown =
    R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":"unknown tag=v9"}]})" "\n";

std::string json_head(int status, std::size_t length, const std::string& extra = "") {
  return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: application/json; charset=utf-8\r\n" + extra +
         "Content-Length: " + std::to_string(length) + "\r\n\r\n";
}

TEST(ResponseMeter, ErrorCodeOfALengthBodyFedInPieces) {
  auto fed = feed_response(Handler::manifest, Method::get, json_head(404, kManifestUnknown.size()), kManifestUnknown, 3);
  ASSERT_TRUE(fed.complete);
  EXPECT_EQ(fed.error, RegistryError::manifest_unknown);
}

TEST(ResponseMeter, ErrorCodeOfAChunkedBodySeesPayloadOnly) {
  // The chunk-size lines are framing: were they fed, the JSON would not parse.
  auto head = std::string("HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
  auto fed = feed_response(Handler::blob, Method::get, head, chunked(kManifestUnknown, 5), 11);
  ASSERT_TRUE(fed.complete);
  EXPECT_EQ(fed.error, RegistryError::manifest_unknown);
}

TEST(ResponseMeter, NoCodeWithoutAReadableErrorBody) {
  // HEAD: no body at all.
  EXPECT_EQ(feed_response(Handler::manifest, Method::head, json_head(404, 96), "").error, RegistryError::none);
  // gzip is not decompressed.
  EXPECT_EQ(feed_response(Handler::manifest, Method::get,
                          json_head(404, kManifestUnknown.size(), "Content-Encoding: gzip\r\n"), kManifestUnknown)
                .error,
            RegistryError::none);
  // distribution's text/plain 404 for a URL that is no route.
  std::string text = "404 page not found\n";
  EXPECT_EQ(feed_response(Handler::other, Method::get, json_head(404, text.size()), text).error, RegistryError::none);
  // A success body that looks like an error is not one.
  EXPECT_EQ(feed_response(Handler::tags, Method::get, json_head(200, kManifestUnknown.size()), kManifestUnknown).error,
            RegistryError::none);
  // Cut off by an upstream failure: never completed, so `none`.
  auto cut = feed_response(Handler::manifest, Method::get, json_head(404, kManifestUnknown.size()),
                           kManifestUnknown.substr(0, 30));
  EXPECT_FALSE(cut.complete);
  EXPECT_EQ(cut.error, RegistryError::none);
}

TEST(ResponseMeter, Status429WithoutBodyIsTooManyRequests) {
  EXPECT_EQ(feed_response(Handler::manifest, Method::head, json_head(429, 0), "").error, RegistryError::toomanyrequests);
  EXPECT_EQ(feed_response(Handler::blob, Method::get, json_head(429, 0), "").error, RegistryError::toomanyrequests);
  std::string denied = R"({"errors":[{"code":"DENIED","message":"no"}]})";
  // A 429 that names its code keeps it.
  EXPECT_EQ(feed_response(Handler::blob, Method::get, json_head(429, denied.size()), denied).error, RegistryError::denied);
}

TEST(ResponseMeter, LocalAnswersCarryTheirOwnCode) {
  ResponseMeter meter;
  meter.local_answer(502, "UNAVAILABLE", false);
  EXPECT_EQ(meter.error(), RegistryError::unavailable);
  meter.local_answer(400, "NAME_INVALID", false);
  EXPECT_EQ(meter.error(), RegistryError::name_invalid);
  meter.local_answer(502, "UNAVAILABLE", true);  // a HEAD answer has no body
  EXPECT_EQ(meter.error(), RegistryError::none);
}

std::string image_manifest_body() {
  return oci_image_manifest({fake_digest(1), 512}, {{fake_digest(2), 1000}, {fake_digest(3), 2000}});
}

TEST(ResponseMeter, ManifestGetAnswered200IsParsedAsItStreams) {
  auto body = image_manifest_body();
  auto head = "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nDocker-Content-Digest: " +
              fake_digest(9) + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  auto fed = feed_response(Handler::manifest, Method::get, head, body, 13);
  ASSERT_TRUE(fed.manifest.has_value());
  EXPECT_EQ(fed.manifest->kind, ManifestKind::image);
  ASSERT_EQ(fed.manifest->layers.size(), 2u);
  EXPECT_EQ(fed.manifest->layers[1].size, 2000u);
  EXPECT_EQ(fed.content_digest, fake_digest(9));
  EXPECT_EQ(fed.error, RegistryError::none);

  // Chunked, as some registries answer.
  auto chunked_head = std::string("HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\n"
                                  "Transfer-Encoding: chunked\r\n\r\n");
  EXPECT_TRUE(feed_response(Handler::manifest, Method::get, chunked_head, chunked(body, 100), 64).manifest.has_value());
}

TEST(ResponseMeter, OnlyManifestGetsAnswered200AreCollected) {
  auto body = image_manifest_body();
  auto head = "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: " +
              std::to_string(body.size()) + "\r\n\r\n";
  EXPECT_FALSE(feed_response(Handler::blob, Method::get, head, body).manifest.has_value());
  EXPECT_FALSE(feed_response(Handler::manifest, Method::head, head, "").manifest.has_value());
  EXPECT_FALSE(feed_response(Handler::referrers, Method::get, head, body).manifest.has_value());
  // Not finished (cut off): not parsed.
  EXPECT_FALSE(feed_response(Handler::manifest, Method::get, head, body, 7, false).manifest.has_value());
}

TEST(ResponseMeter, ManifestsOverTheCapAreNotCollected) {
  // Announced too large: not collected at all.
  std::string big(kMaxManifestBytes + 1, ' ');
  auto head = "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: " +
              std::to_string(big.size()) + "\r\n\r\n";
  EXPECT_FALSE(feed_response(Handler::manifest, Method::get, head, big, 1 << 16).manifest.has_value());
  // Growing past the cap while streaming (no length announced): dropped.
  auto body = image_manifest_body() + std::string(kMaxManifestBytes, ' ');
  auto chunked_head = std::string("HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\n"
                                  "Transfer-Encoding: chunked\r\n\r\n");
  EXPECT_FALSE(feed_response(Handler::manifest, Method::get, chunked_head, chunked(body, 1 << 16), 1 << 16)
                   .manifest.has_value());
}

MessageHead head_with(std::vector<HeaderField> fields) {
  MessageHead head;
  head.headers = std::move(fields);
  return head;
}

TEST(ResponseMeterHelpers, RateLimitOfAResponseHead) {
  auto budget = rate_limit_of(head_with({{"Content-Type", "application/json"},
                                         {"ratelimit-limit", "100;w=21600"},
                                         {"RateLimit-Remaining", "76;w=21600"}}));
  ASSERT_TRUE(budget.has_value());
  EXPECT_EQ(budget->limit, 100u);
  EXPECT_EQ(budget->remaining, 76u);
  EXPECT_EQ(budget->window_seconds, 21600u);
  EXPECT_FALSE(rate_limit_of(head_with({{"Content-Type", "application/json"}})).has_value());
}

TEST(ResponseMeterHelpers, PullClientAddress) {
  auto request = head_with({{"X-Forwarded-For", "203.0.113.9, 10.0.0.7"}});
  EXPECT_EQ(pull_client_address(request, "127.0.0.1", false), "127.0.0.1");
  EXPECT_EQ(pull_client_address(request, "127.0.0.1", true), "10.0.0.7");  // the balancer's own entry
  EXPECT_EQ(pull_client_address(head_with({}), "127.0.0.1", true), "127.0.0.1");
  EXPECT_EQ(pull_client_address(head_with({{"X-Forwarded-For", ""}}), "127.0.0.1", true), "127.0.0.1");
  EXPECT_EQ(pull_client_address(head_with({{"X-Forwarded-For", "a, "}}), "127.0.0.1", true), "127.0.0.1");
}

TEST(ResponseMeterHelpers, ClientErrors) {
  EXPECT_TRUE(counts_as_client_error(Method::get, 500));
  EXPECT_TRUE(counts_as_client_error(Method::get, 404));
  EXPECT_TRUE(counts_as_client_error(Method::get, 429));
  EXPECT_TRUE(counts_as_client_error(Method::head, 500));
  EXPECT_FALSE(counts_as_client_error(Method::get, 401));   // the token handshake
  EXPECT_FALSE(counts_as_client_error(Method::head, 404));  // existence checks
  EXPECT_FALSE(counts_as_client_error(Method::get, 200));
  EXPECT_FALSE(counts_as_client_error(Method::get, 307));
  EXPECT_FALSE(counts_as_client_error(Method::get, 0));     // the client went away
}

// ---------------------------------------------------------------- metrics

Exchange exchange(Handler handler, Method method, int status, ClientFamily client = ClientFamily::other,
                  RegistryError error = RegistryError::none) {
  Exchange e = testing::answered_exchange(handler, method, status);
  e.client = client;
  e.error = error;
  return e;
}


TEST(MeteringMetrics, ErrorsClientsAndRatiosAcrossShards) {
  Metrics metrics(2);
  record(metrics.shard(0), exchange(Handler::manifest, Method::get, 404, ClientFamily::containerd,
                                    RegistryError::manifest_unknown));
  record(metrics.shard(1), exchange(Handler::manifest, Method::get, 404, ClientFamily::containerd,
                                    RegistryError::manifest_unknown));
  record(metrics.shard(1), exchange(Handler::manifest, Method::get, 200, ClientFamily::containerd));
  record(metrics.shard(0), exchange(Handler::blob, Method::head, 404, ClientFamily::docker, RegistryError::none));
  record(metrics.shard(0), exchange(Handler::base, Method::get, 401, ClientFamily::docker, RegistryError::unauthorized));
  auto text = metrics.render_text();
  EXPECT_TRUE(has_line(text, R"(regmeter_registry_errors_total{error="MANIFEST_UNKNOWN",handler="manifest",method="get"} 2)")) << text;
  EXPECT_TRUE(has_line(text, R"(regmeter_registry_errors_total{error="none",handler="blob",method="head"} 1)")) << text;
  EXPECT_TRUE(has_line(text, R"(regmeter_registry_errors_total{error="UNAUTHORIZED",handler="base",method="get"} 1)")) << text;
  EXPECT_TRUE(has_line(text, R"(regmeter_client_requests_total{client="containerd",handler="manifest"} 3)")) << text;
  EXPECT_TRUE(has_line(text, R"(regmeter_client_errors_total{client="containerd",handler="manifest"} 2)")) << text;
  // A HEAD 404 and a 401 are not client errors, but the series exists (at 0) for the ratio.
  EXPECT_TRUE(has_line(text, R"(regmeter_client_errors_total{client="docker",handler="blob"} 0)")) << text;
  EXPECT_TRUE(has_line(text, R"(regmeter_client_errors_total{client="docker",handler="base"} 0)")) << text;
  // A success is no error series.
  EXPECT_TRUE(lines_starting(text, R"(regmeter_registry_errors_total{error="none",handler="manifest")").empty()) << text;
  EXPECT_TRUE(has_line(text, "# TYPE regmeter_registry_errors_total counter"));
  EXPECT_TRUE(has_line(text, "# TYPE regmeter_client_requests_total counter"));
}

TEST(MeteringMetrics, BlobRedirectsPerRepository) {
  Metrics metrics(1);
  for (int status : {307, 302, 200, 303, 308, 404}) {
    auto e = exchange(Handler::blob, Method::get, status);
    e.repository = "team/app";
    record(metrics.shard(0), e);
  }
  auto e = exchange(Handler::blob, Method::head, 307);  // a HEAD moves no bytes either way
  e.repository = "team/app";
  record(metrics.shard(0), e);
  auto text = metrics.render_text();
  EXPECT_TRUE(has_line(text, R"(regmeter_blob_redirects_total{repository="team/app"} 4)")) << text;
}

TEST(MeteringMetrics, ImagePullHistogramsPerOutcome) {
  Metrics metrics(1);
  metrics.shard(0).image_pull_ended(EndedPull{PullOutcome::complete, 7.0, 3u << 20, 3, 3, 0});
  metrics.shard(0).image_pull_ended(EndedPull{PullOutcome::complete, 3000.0, 1ull << 34, 3, 3, 0});
  metrics.shard(0).image_pull_ended(EndedPull{PullOutcome::partial, 0.2, 0, 3, 0, 0});
  auto text = metrics.render_text();
  EXPECT_TRUE(has_line(text, R"(regmeter_image_pull_duration_seconds_bucket{outcome="complete",le="5"} 0)")) << text;
  EXPECT_TRUE(has_line(text, R"(regmeter_image_pull_duration_seconds_bucket{outcome="complete",le="10"} 1)")) << text;
  EXPECT_TRUE(has_line(text, R"(regmeter_image_pull_duration_seconds_bucket{outcome="complete",le="3600"} 2)")) << text;
  EXPECT_TRUE(has_line(text, R"(regmeter_image_pull_duration_seconds_count{outcome="complete"} 2)")) << text;
  EXPECT_TRUE(has_line(text, R"(regmeter_image_pull_duration_seconds_sum{outcome="complete"} 3007)")) << text;
  // 3 MiB falls in the 4 MiB bucket; 16 GiB in the 16 GiB one (inclusive bounds).
  EXPECT_TRUE(has_line(text, R"(regmeter_image_pull_size_bytes_bucket{outcome="complete",le="1.048576e+06"} 0)")) << text;
  EXPECT_TRUE(has_line(text, R"(regmeter_image_pull_size_bytes_bucket{outcome="complete",le="4.194304e+06"} 1)")) << text;
  EXPECT_TRUE(has_line(text, R"(regmeter_image_pull_size_bytes_bucket{outcome="complete",le="4.294967296e+09"} 1)")) << text;
  EXPECT_TRUE(has_line(text, R"(regmeter_image_pull_size_bytes_bucket{outcome="complete",le="1.7179869184e+10"} 2)")) << text;
  EXPECT_TRUE(has_line(text, R"(regmeter_image_pull_size_bytes_bucket{outcome="complete",le="2.74877906944e+11"} 2)")) << text;
  EXPECT_TRUE(has_line(text, R"(regmeter_image_pull_size_bytes_bucket{outcome="partial",le="1.048576e+06"} 1)")) << text;
  EXPECT_TRUE(lines_starting(text, R"(regmeter_image_pull_duration_seconds_count{outcome="redirected"})").empty());
}

// ---------------------------------------------------------------- SharedMetering

TEST(SharedMetering, RateLimitGaugesAppearWhenFirstSeen) {
  Metrics metrics(1);
  Config config;
  SharedMetering metering(config, metrics.registry());
  EXPECT_TRUE(lines_starting(metrics.render_text(), "regmeter_upstream_ratelimit").empty());
  metering.rate_limit_seen(RateLimit{100, 76, 21600});
  auto text = metrics.render_text();
  EXPECT_TRUE(has_line(text, "regmeter_upstream_ratelimit_limit 100")) << text;
  EXPECT_TRUE(has_line(text, "regmeter_upstream_ratelimit_remaining 76")) << text;
  EXPECT_TRUE(has_line(text, "regmeter_upstream_ratelimit_window_seconds 21600")) << text;
  metering.rate_limit_seen(RateLimit{std::nullopt, 75, std::nullopt});  // last values seen, field by field
  text = metrics.render_text();
  EXPECT_TRUE(has_line(text, "regmeter_upstream_ratelimit_limit 100")) << text;
  EXPECT_TRUE(has_line(text, "regmeter_upstream_ratelimit_remaining 75")) << text;
}

TEST(SharedMetering, APullThroughTheSharedTableEndsInTheCallersShard) {
  Metrics metrics(2);
  Config config;
  config.pull_session_idle_s = 1;
  SharedMetering metering(config, metrics.registry());
  ASSERT_TRUE(metering.tracks_pulls());
  auto body = image_manifest_body();
  auto head = "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: " +
              std::to_string(body.size()) + "\r\n\r\n";
  MessageParser parser(MessageParser::Kind::response);
  ResponseMeter meter;
  parser.set_payload_observer(&meter);
  parser.reset();
  ASSERT_TRUE(parser.parse_head(head));
  meter.begin(Handler::manifest, Method::get, parser.head());
  parser.parse_body(body);
  ASSERT_TRUE(parser.complete());
  meter.complete();

  auto t0 = Clock::time_point{} + 1h;
  SharedMetering::PullRequest manifest;
  manifest.key = PullKey{"10.0.0.7", "containerd/2.0", "team/app"};
  manifest.handler = Handler::manifest;
  manifest.method = Method::get;
  manifest.status = 200;
  manifest.reference = "v1";
  manifest.started = t0;
  manifest.finished = t0 + 10ms;
  manifest.meter = &meter;
  manifest.response_complete = true;
  metering.pull_request_finished(manifest, metrics.shard(0));
  EXPECT_EQ(metering.pulls_tracked(), 1u);
  // The blobs come on other connections, so other threads.
  std::vector<std::pair<std::string, std::uint64_t>> blobs = {{fake_digest(1), 512}, {fake_digest(2), 1000}, {fake_digest(3), 2000}};
  for (std::size_t i = 0; i < blobs.size(); ++i) {
    SharedMetering::PullRequest blob = manifest;
    blob.handler = Handler::blob;
    blob.reference = blobs[i].first;
    blob.response_body_bytes = blobs[i].second;
    blob.started = t0 + 20ms;
    blob.finished = t0 + std::chrono::milliseconds(30 + i);
    blob.meter = nullptr;
    metering.pull_request_finished(blob, metrics.shard(1));
  }
  EXPECT_EQ(metering.pulls_tracked(), 0u);
  auto text = metrics.render_text();
  EXPECT_TRUE(has_line(text, R"(regmeter_image_pull_duration_seconds_count{outcome="complete"} 1)")) << text;
  EXPECT_TRUE(has_line(text, R"(regmeter_image_pull_size_bytes_sum{outcome="complete"} 3512)")) << text;
  EXPECT_TRUE(has_line(text, R"(regmeter_image_pull_duration_seconds_sum{outcome="complete"} 0.032)")) << text;

  // A pull the client abandons (it had the blobs) ends partial on the sweep.
  metering.pull_request_finished(manifest, metrics.shard(0));
  metering.expire_pulls(t0 + 500ms, metrics.shard(0));
  EXPECT_EQ(metering.pulls_tracked(), 1u);
  metering.expire_pulls(t0 + 2s, metrics.shard(0));
  EXPECT_EQ(metering.pulls_tracked(), 0u);
  EXPECT_TRUE(has_line(metrics.render_text(), R"(regmeter_image_pull_duration_seconds_count{outcome="partial"} 1)"));
}

TEST(SharedMetering, MaxPullSessionsZeroTracksNothing) {
  Metrics metrics(1);
  Config config;
  config.max_pull_sessions = 0;
  SharedMetering metering(config, metrics.registry());
  EXPECT_FALSE(metering.tracks_pulls());
}

// ---------------------------------------------------------------- hostile input

std::string random_text(std::mt19937_64& rng, std::size_t max_length) {
  std::uniform_int_distribution<std::size_t> length(0, max_length);
  std::uniform_int_distribution<int> byte(1, 255);
  std::string out(length(rng), ' ');
  for (auto& c : out) c = static_cast<char>(byte(rng));
  return out;
}

// The label values of `name`'s samples for label `label`.
std::set<std::string> label_values(const std::string& text, const std::string& name, const std::string& label) {
  std::set<std::string> out;
  for (const auto& line : lines_starting(text, name + "{")) {
    auto at = line.find(label + "=\"");
    if (at == std::string::npos) continue;
    at += label.size() + 2;
    out.insert(line.substr(at, line.find('"', at) - at));
  }
  return out;
}

std::size_t series_count(const std::string& text, const std::string& name) {
  return lines_starting(text, name + "{").size();
}

TEST(MeteringBounds, LabelsStayBoundedUnderHostileInput) {
  std::mt19937_64 rng(16);
  Metrics metrics(2, MetricsOptions{50});
  PullSessionOptions options;
  options.max_sessions = 500;
  options.idle = 1s;
  PullSessions pulls(options);
  std::uniform_int_distribution<int> status(100, 599);
  std::uniform_int_distribution<int> handler(0, kHandlerCount - 1), method(0, kMethodCount - 1);
  auto now = PullClock::time_point{} + 1h;
  const std::vector<std::string> codes = {"MANIFEST_UNKNOWN", "BLOB_UNKNOWN", "DENIED", "toomanyrequests"};
  for (int i = 0; i < 20000; ++i) {
    // Random User-Agents, and every third one a real client's with noise after it.
    std::string ua = i % 3 ? random_text(rng, 300) : "containerd/" + random_text(rng, 20);
    // Error bodies with random codes, known ones, random bytes.
    std::string code = i % 4 == 0 ? codes[i % codes.size()] : random_text(rng, 40);
    std::string body = i % 5 == 0 ? random_text(rng, 200) : R"({"errors":[{"code":")" + code + R"("}]})";
    int s = status(rng);
    auto h = static_cast<Handler>(handler(rng));
    auto m = static_cast<Method>(method(rng));
    auto fed = feed_response(h, m, json_head(s, body.size()), body, 64);
    auto e = exchange(h, m, s, classify_user_agent(ua), fed.error);
    std::string repository = "repo/" + std::to_string(i);  // thousands of repositories
    e.repository = repository;
    record(metrics.shard(i % 2), e);

    // Thousands of distinct clients, each starting a pull and fetching some of it.
    std::string address = "10." + std::to_string(i % 250) + "." + std::to_string(i / 250) + ".1";
    PullKey key{address, ua, repository};
    auto manifest = parse_manifest(oci_image_manifest({fake_digest(i * 3), 10}, {{fake_digest(i * 3 + 1), 20}}),
                                   "application/vnd.oci.image.manifest.v1+json");
    ASSERT_TRUE(manifest.has_value());
    now += 1ms;
    for (const auto& ended : pulls.on_manifest(key, "v1", "", *manifest, now, now)) metrics.shard(0).image_pull_ended(ended);
    int blob_status = i % 7 == 0 ? 307 : 200;
    if (auto ended = pulls.on_blob(key, fake_digest(i * 3 + 1), BlobRequest::get, blob_status, 20, now, now))
      metrics.shard(0).image_pull_ended(*ended);
    if (i % 2 == 0)  // every other client fetches the config too: a whole pull
      if (auto ended = pulls.on_blob(key, fake_digest(i * 3), BlobRequest::get, blob_status, 10, now, now))
        metrics.shard(0).image_pull_ended(*ended);
    auto blob = exchange(Handler::blob, Method::get, blob_status);
    blob.repository = repository;
    record(metrics.shard(1), blob);
    ASSERT_LE(pulls.size(), options.max_sessions);
  }
  for (const auto& ended : pulls.expire(now + 1h)) metrics.shard(0).image_pull_ended(ended);
  auto text = metrics.render_text();

  std::set<std::string> allowed_errors, allowed_clients;
  for (std::size_t e = 0; e < kRegistryErrorCount; ++e)
    allowed_errors.insert(std::string(registry_error_name(static_cast<RegistryError>(e))));
  for (std::size_t c = 0; c < kClientFamilyCount; ++c)
    allowed_clients.insert(std::string(client_family_name(static_cast<ClientFamily>(c))));
  for (const auto& v : label_values(text, "regmeter_registry_errors_total", "error"))
    EXPECT_TRUE(allowed_errors.count(v)) << v;
  for (const auto& v : label_values(text, "regmeter_client_requests_total", "client"))
    EXPECT_TRUE(allowed_clients.count(v)) << v;
  EXPECT_LE(series_count(text, "regmeter_registry_errors_total"), kHandlerCount * kMethodCount * kRegistryErrorCount);
  EXPECT_LE(series_count(text, "regmeter_client_requests_total"), kClientFamilyCount * kHandlerCount);
  EXPECT_LE(series_count(text, "regmeter_client_errors_total"), kClientFamilyCount * kHandlerCount);
  // The random codes all fold into `other`, and the real ones are there.
  EXPECT_TRUE(label_values(text, "regmeter_registry_errors_total", "error").count("other"));
  EXPECT_TRUE(label_values(text, "regmeter_registry_errors_total", "error").count("TOOMANYREQUESTS"));
  EXPECT_TRUE(label_values(text, "regmeter_client_requests_total", "client").count("containerd"));
  // Outcomes: three at most, all three seen (complete, redirected, and the
  // partials the full table ended).
  auto outcomes = label_values(text, "regmeter_image_pull_duration_seconds_count", "outcome");
  EXPECT_EQ(outcomes, (std::set<std::string>{"complete", "partial", "redirected"}));
  // Repositories: --max-repositories 50 plus __other__.
  EXPECT_LE(series_count(text, "regmeter_blob_redirects_total"), 51u);
  EXPECT_TRUE(label_values(text, "regmeter_blob_redirects_total", "repository").count("__other__"));
}

}  // namespace
}  // namespace regmeter
