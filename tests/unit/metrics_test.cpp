// Records exchanges into shards and asserts on the rendered exposition text.
#include "core/metrics.h"
#include "core/pull_sessions.h"
#include "metrics_test_util.h"

#include <gtest/gtest.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace regmeter {
namespace {

using namespace std::chrono_literals;
using testing::has_line;
using testing::lines_of;
using testing::lines_starting;
using testing::record;

Exchange exchange(Handler handler, Method method, int status, std::chrono::nanoseconds duration = 1ms,
                  std::uint64_t request_bytes = 0, std::uint64_t response_bytes = 0) {
  Exchange e = testing::answered_exchange(handler, method, status, duration);
  e.request_body_bytes = request_bytes;
  e.response_body_bytes = response_bytes;
  return e;
}



// Bucket bounds exactly as distribution 2.8.2 prints them (scraped from a
// running docker-registry): Go writes 1048576 as "1.048576e+06".
const std::vector<std::string> kDurationLe = {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
                                              "1",     "2.5",  "5",     "10",   "25",  "60",  "+Inf"};
const std::vector<std::string> kSizeLe = {
    "1024",          "2048",          "4096",          "8192",           "16384",          "32768",
    "65536",         "131072",        "262144",        "524288",         "1.048576e+06",   "2.097152e+06",
    "4.194304e+06",  "8.388608e+06",  "1.6777216e+07", "3.3554432e+07",  "6.7108864e+07",  "1.34217728e+08",
    "2.68435456e+08", "5.36870912e+08", "1.073741824e+09", "2.147483648e+09", "+Inf"};

TEST(Metrics, FreshRegistryShowsOnlyInFlightGauges) {
  Metrics metrics(2);
  auto text = metrics.render_text();
  EXPECT_LINE(text, "# HELP registry_http_in_flight_requests The in-flight HTTP requests");
  EXPECT_LINE(text, "# TYPE registry_http_in_flight_requests gauge");
  EXPECT_LINE(text, "registry_http_in_flight_requests{handler=\"base\"} 0");
  EXPECT_LINE(text, "registry_http_in_flight_requests{handler=\"other\"} 0");
  EXPECT_EQ(lines_starting(text, "registry_http_in_flight_requests{").size(), kHandlerCount);
  // Counter and histogram series appear once observed, as with client_golang vectors.
  EXPECT_EQ(text.find("registry_http_requests_total"), std::string::npos);
  // Except the rejection reasons, a fixed set present from the start at 0.
  EXPECT_EQ(lines_starting(text, "regmeter_").size(), kRejectReasonCount);
  EXPECT_EQ(lines_starting(text, "regmeter_rejected_connections_total{").size(), kRejectReasonCount);
}

TEST(Metrics, RejectedConnectionsAreCountedPerReasonAndNeverAsRequests) {
  Metrics metrics(2);
  metrics.shard(0).connection_rejected(RejectReason::tls_on_plain_port);
  metrics.shard(1).connection_rejected(RejectReason::tls_on_plain_port);
  metrics.shard(1).connection_rejected(RejectReason::header_timeout);
  auto text = metrics.render_text();
  EXPECT_LINE(text, "# HELP regmeter_rejected_connections_total Connections refused before a request on them could "
                    "be parsed (not counted in registry_http_*), by reason.");
  EXPECT_LINE(text, "# TYPE regmeter_rejected_connections_total counter");
  EXPECT_LINE(text, "regmeter_rejected_connections_total{reason=\"tls_on_plain_port\"} 2");
  EXPECT_LINE(text, "regmeter_rejected_connections_total{reason=\"header_timeout\"} 1");
  for (const char* zero : {"http_on_tls_port", "not_http", "malformed_head", "unsupported_version", "head_too_large"})
    EXPECT_LINE(text, std::string("regmeter_rejected_connections_total{reason=\"") + zero + "\"} 0");
  EXPECT_EQ(text.find("registry_http_requests_total"), std::string::npos);
  EXPECT_LINE(text, "registry_http_in_flight_requests{handler=\"other\"} 0");
}

TEST(Metrics, HelpAndTypeLinesInDistributionOrder) {
  Metrics metrics(1);
  record(metrics.shard(0), exchange(Handler::base, Method::get, 200));
  auto text = metrics.render_text();
  std::vector<std::string> expected = {
      "# HELP registry_http_in_flight_requests The in-flight HTTP requests",
      "# TYPE registry_http_in_flight_requests gauge",
      "# HELP registry_http_request_duration_seconds The HTTP request latencies in seconds.",
      "# TYPE registry_http_request_duration_seconds histogram",
      "# HELP registry_http_request_size_bytes The HTTP request sizes in bytes.",
      "# TYPE registry_http_request_size_bytes histogram",
      "# HELP registry_http_requests_total Total number of HTTP requests made.",
      "# TYPE registry_http_requests_total counter",
      "# HELP registry_http_response_size_bytes The HTTP response sizes in bytes.",
      "# TYPE registry_http_response_size_bytes histogram",
      // Then regmeter's own: the client families every request counts in
      // (issue 16), the native twin of the duration, and the one present from the start.
      "# HELP regmeter_client_errors_total Requests answered with an error (5xx, or 4xx other than 401 challenges and "
      "404s to HEAD existence checks), by client family and handler.",
      "# TYPE regmeter_client_errors_total counter",
      "# HELP regmeter_client_requests_total Requests by the client family of their User-Agent, and handler.",
      "# TYPE regmeter_client_requests_total counter",
      "# HELP regmeter_http_request_duration_seconds The HTTP request latencies in seconds, with native buckets: the "
      "twin of registry_http_request_duration_seconds.",
      "# TYPE regmeter_http_request_duration_seconds histogram",
      "# HELP regmeter_rejected_connections_total Connections refused before a request on them could be parsed (not "
      "counted in registry_http_*), by reason.",
      "# TYPE regmeter_rejected_connections_total counter",
  };
  EXPECT_EQ(lines_starting(text, "# "), expected);
}

TEST(Metrics, RequestsTotalSumsAcrossShards) {
  Metrics metrics(3);
  record(metrics.shard(0), exchange(Handler::blob_upload_chunk, Method::put, 201));
  record(metrics.shard(2), exchange(Handler::blob_upload_chunk, Method::put, 201));
  record(metrics.shard(1), exchange(Handler::blob_upload_chunk, Method::patch, 202));
  record(metrics.shard(1), exchange(Handler::manifest, Method::get, 404));
  auto text = metrics.render_text();
  EXPECT_EQ(lines_starting(text, "registry_http_requests_total{"),
            (std::vector<std::string>{
                R"(registry_http_requests_total{code="201",handler="blob_upload_chunk",method="put"} 2)",
                R"(registry_http_requests_total{code="202",handler="blob_upload_chunk",method="patch"} 1)",
                R"(registry_http_requests_total{code="404",handler="manifest",method="get"} 1)",
            }));
}

TEST(Metrics, DurationBucketsAreCumulativeWithInclusiveBounds) {
  Metrics metrics(2);
  // 5ms sits exactly on a bound: `le` means less than or equal.
  for (auto d : {3ms, 5ms, 7ms})
    record(metrics.shard(0), exchange(Handler::blob, Method::get, 200, d));
  for (std::chrono::nanoseconds d : {std::chrono::nanoseconds(30ms), std::chrono::nanoseconds(2s),
                                     std::chrono::nanoseconds(100s)})
    record(metrics.shard(1), exchange(Handler::blob, Method::get, 200, d));
  auto text = metrics.render_text();
  const std::vector<int> cumulative = {2, 3, 3, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 6};
  std::vector<std::string> expected;
  for (std::size_t i = 0; i < kDurationLe.size(); ++i)
    expected.push_back("registry_http_request_duration_seconds_bucket{handler=\"blob\",method=\"get\",le=\"" +
                       kDurationLe[i] + "\"} " + std::to_string(cumulative[i]));
  EXPECT_EQ(lines_starting(text, "registry_http_request_duration_seconds_bucket{handler=\"blob\""), expected);
  EXPECT_LINE(text, R"(registry_http_request_duration_seconds_sum{handler="blob",method="get"} 102.045)");
  EXPECT_LINE(text, R"(registry_http_request_duration_seconds_count{handler="blob",method="get"} 6)");
}

TEST(Metrics, SizeHistogramsUseBodyBytesAndGoStyleBounds) {
  Metrics metrics(1);
  auto& shard = metrics.shard(0);
  record(shard, exchange(Handler::blob_upload_chunk, Method::patch, 202, 1ms, 1024, 0));            // on the 1 KiB bound
  record(shard, exchange(Handler::blob_upload_chunk, Method::put, 201, 1ms, 1025, 0));              // just above
  record(shard, exchange(Handler::blob_upload_chunk, Method::patch, 202, 1ms, 1u << 20, 0));        // 1 MiB bound
  record(shard, exchange(Handler::blob_upload_chunk, Method::patch, 202, 1ms, (1ull << 31) + 1, 0)); // past the top
  record(shard, exchange(Handler::blob, Method::get, 200, 1ms, 0, 3'000'000));
  auto text = metrics.render_text();

  const std::vector<int> cumulative = {1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 4};
  std::vector<std::string> expected;
  for (std::size_t i = 0; i < kSizeLe.size(); ++i)
    expected.push_back("registry_http_request_size_bytes_bucket{handler=\"blob_upload_chunk\",le=\"" + kSizeLe[i] +
                       "\"} " + std::to_string(cumulative[i]));
  EXPECT_EQ(lines_starting(text, "registry_http_request_size_bytes_bucket{handler=\"blob_upload_chunk\""), expected);
  EXPECT_LINE(text, R"(registry_http_request_size_bytes_sum{handler="blob_upload_chunk"} 2148534274)");
  EXPECT_LINE(text, R"(registry_http_request_size_bytes_count{handler="blob_upload_chunk"} 4)");

  EXPECT_LINE(text, R"(registry_http_response_size_bytes_bucket{handler="blob",le="2.097152e+06"} 0)");
  EXPECT_LINE(text, R"(registry_http_response_size_bytes_bucket{handler="blob",le="4.194304e+06"} 1)");
  EXPECT_LINE(text, R"(registry_http_response_size_bytes_sum{handler="blob"} 3000000)");
  EXPECT_LINE(text, R"(registry_http_response_size_bytes_bucket{handler="blob_upload_chunk",le="1024"} 4)");
  EXPECT_LINE(text, R"(registry_http_request_size_bytes_bucket{handler="blob",le="1024"} 1)");
}

TEST(Metrics, InFlightGoesUpAndDownPerHandler) {
  Metrics metrics(2);
  metrics.shard(0).request_started(Handler::blob);
  metrics.shard(0).request_started(Handler::blob);
  metrics.shard(1).request_started(Handler::blob);
  metrics.shard(1).request_started(Handler::manifest);
  auto text = metrics.render_text();
  EXPECT_LINE(text, R"(registry_http_in_flight_requests{handler="blob"} 3)");
  EXPECT_LINE(text, R"(registry_http_in_flight_requests{handler="manifest"} 1)");

  metrics.shard(0).request_finished(exchange(Handler::blob, Method::get, 200));
  metrics.shard(1).request_finished(exchange(Handler::manifest, Method::head, 200));
  text = metrics.render_text();
  EXPECT_LINE(text, R"(registry_http_in_flight_requests{handler="blob"} 2)");
  EXPECT_LINE(text, R"(registry_http_in_flight_requests{handler="manifest"} 0)");
}

TEST(Metrics, ClientGoneBeforeResponseCountsAs499AndIsStillTimed) {
  Metrics metrics(1);
  record(metrics.shard(0), exchange(Handler::blob_upload_chunk, Method::patch, 0, 20ms, 5000, 0));
  auto text = metrics.render_text();
  EXPECT_LINE(text, R"(registry_http_requests_total{code="499",handler="blob_upload_chunk",method="patch"} 1)");
  EXPECT_LINE(text, R"(registry_http_request_duration_seconds_count{handler="blob_upload_chunk",method="patch"} 1)");
  EXPECT_LINE(text, R"(registry_http_request_size_bytes_sum{handler="blob_upload_chunk"} 5000)");
}

TEST(Metrics, NegativeDurationIsClampedToZero) {
  Metrics metrics(1);
  auto e = exchange(Handler::base, Method::get, 200);
  e.finished = e.started - 1s;
  record(metrics.shard(0), e);
  auto text = metrics.render_text();
  EXPECT_LINE(text, R"(registry_http_request_duration_seconds_bucket{handler="base",method="get",le="0.005"} 1)");
  EXPECT_LINE(text, R"(registry_http_request_duration_seconds_sum{handler="base",method="get"} 0)");
}

TEST(Metrics, EveryHandlerAndMethodHasAValidLabelValue) {
  Metrics metrics(1);
  for (std::size_t h = 0; h < kHandlerCount; ++h)
    for (std::size_t m = 0; m < kMethodCount; ++m)
      record(metrics.shard(0), exchange(static_cast<Handler>(h), static_cast<Method>(m), 200));
  auto text = metrics.render_text();

  const std::set<std::string> handlers = {"base",        "catalog",           "tags",      "manifest", "blob",
                                          "blob_upload", "blob_upload_chunk", "referrers", "other"};
  const std::set<std::string> methods = {"get", "head", "post", "put", "patch", "delete", "options", "other"};
  std::regex handler_re(R"re(handler="([^"]*)")re");
  std::regex method_re(R"re(method="([^"]*)")re");
  std::set<std::string> seen_handlers, seen_methods;
  for (const auto& line : lines_of(text)) {
    std::smatch m;
    if (std::regex_search(line, m, handler_re)) seen_handlers.insert(m[1]);
    if (std::regex_search(line, m, method_re)) seen_methods.insert(m[1]);
  }
  EXPECT_EQ(seen_handlers, handlers);
  EXPECT_EQ(seen_methods, methods);
  EXPECT_EQ(lines_starting(text, "registry_http_requests_total{").size(), kHandlerCount * kMethodCount);
}

TEST(Metrics, ColdPathRegistryFamiliesAreRenderedInNameOrder) {
  Metrics metrics(1);
  auto& family = prometheus::BuildCounter().Name("regmeter_config_reloads_total").Help("Reloads.").Register(
      metrics.registry());
  family.Add({}).Increment(3);
  auto text = metrics.render_text();
  EXPECT_LINE(text, "regmeter_config_reloads_total 3");
  EXPECT_LT(text.find("# HELP registry_http_in_flight_requests"), text.find("# HELP regmeter_config_reloads_total"))
      << "families are sorted by name";
}

std::string find_on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    auto candidate = std::filesystem::path(dir.empty() ? "." : dir) / program;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

// promtool is a requirement of this test, not an option: a missing one fails
// the test (a skip would count as a pass). tests/run.sh installs Debian's
// `prometheus` package, which ships /usr/bin/promtool.
std::string require_promtool() {
  auto promtool = find_on_path("promtool");
  if (promtool.empty())
    ADD_FAILURE() << "promtool not found on PATH (" << (std::getenv("PATH") ? std::getenv("PATH") : "")
                  << "): apt-get install prometheus (tests/run.sh does)";
  return promtool;
}

// Runs `promtool check metrics` on `text`; returns its output (empty when
// it has nothing to say) and expects it to succeed.
std::string promtool_check(const std::string& promtool, const std::string& text) {
  auto file = std::filesystem::temp_directory_path() / ("regmeter-metrics-" + std::to_string(::getpid()) + ".txt");
  std::ofstream(file) << text;

  auto command = promtool + " check metrics < " + file.string() + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  EXPECT_NE(pipe, nullptr);
  if (pipe == nullptr) return "popen failed";
  std::string output;
  char buf[512];
  while (auto n = std::fread(buf, 1, sizeof buf, pipe)) output.append(buf, n);
  int status = ::pclose(pipe);
  std::filesystem::remove(file);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << output;
  return output;
}

TEST(Metrics, PromtoolAcceptsTheExposition) {
  auto promtool = require_promtool();
  ASSERT_FALSE(promtool.empty());

  Metrics metrics(2);
  record(metrics.shard(0), exchange(Handler::manifest, Method::put, 201, 12ms, 1500, 0));
  record(metrics.shard(1), exchange(Handler::blob, Method::get, 307, 2ms, 0, 0));
  record(metrics.shard(1), exchange(Handler::blob_upload_chunk, Method::patch, 0, 2s, 3 << 20, 0));
  record(metrics.shard(0), exchange(Handler::other, Method::other, 404, 1ms, 0, 19));
  EXPECT_EQ(promtool_check(promtool, metrics.render_text()), "");
}

// Workers record into their own shards while a scraper renders; every
// intermediate render is self-consistent and the final totals are exact.
TEST(Metrics, ConcurrentRecordingAndRendering) {
  constexpr std::size_t kThreads = 4;
  constexpr int kPerThread = 100000;
  Metrics metrics(kThreads);
  std::atomic<bool> done{false};
  std::atomic<int> renders{0};

  std::thread scraper([&] {
    std::regex count_re(R"(registry_http_request_duration_seconds_count\{handler="blob",method="get"\} (\d+))");
    std::regex inf_re(R"(registry_http_request_duration_seconds_bucket\{handler="blob",method="get",le="\+Inf"\} (\d+))");
    while (!done.load()) {
      auto text = metrics.render_text();
      std::smatch count, inf;
      if (std::regex_search(text, count, count_re) && std::regex_search(text, inf, inf_re)) {
        EXPECT_EQ(count[1], inf[1]);
      }
      EXPECT_EQ(text.find("in_flight_requests{handler=\"blob\"} -"), std::string::npos);
      ++renders;
    }
  });
  std::vector<std::thread> workers;
  for (std::size_t t = 0; t < kThreads; ++t)
    workers.emplace_back([&, t] {
      auto& shard = metrics.shard(t);
      for (int i = 0; i < kPerThread; ++i)
        record(shard, exchange(Handler::blob, Method::get, i % 2 ? 200 : 206, 1ms, 10, 2000));
    });
  for (auto& w : workers) w.join();
  done = true;
  scraper.join();

  auto text = metrics.render_text();
  auto half = std::to_string(kThreads * kPerThread / 2);
  EXPECT_LINE(text, R"(registry_http_requests_total{code="200",handler="blob",method="get"} )" + half);
  EXPECT_LINE(text, R"(registry_http_requests_total{code="206",handler="blob",method="get"} )" + half);
  EXPECT_LINE(text, R"(registry_http_response_size_bytes_sum{handler="blob"} )" +
                        std::to_string(kThreads * kPerThread * 2000));
  EXPECT_LINE(text, R"(registry_http_in_flight_requests{handler="blob"} 0)");
  EXPECT_GT(renders.load(), 0);
}

// ---- regmeter_* families ----

// The `le` values of each regmeter_* histogram, as Go would print them.
const std::vector<std::string> kSessionDurationLe = {"0.1", "0.25", "0.5", "1",    "2.5",  "5",    "10",   "30",  "60",
                                                     "120", "300",  "600", "1200", "1800", "3600", "7200", "+Inf"};
const std::vector<std::string> kSessionSizeLe = {
    "1024",         "4096",           "16384",           "65536",           "262144",
    "1.048576e+06", "4.194304e+06",   "1.6777216e+07",   "6.7108864e+07",   "2.68435456e+08",
    "1.073741824e+09", "4.294967296e+09", "1.7179869184e+10", "+Inf"};
const std::vector<std::string> kUpstreamHeaderLe = {"0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
                                                    "0.25",  "0.5",    "1",     "2.5",  "5",     "10",   "25",
                                                    "60",    "120",    "300",   "600",  "1800",  "3600", "+Inf"};
const std::vector<std::string> kConnectLe = {"0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005",
                                             "0.01",   "0.025",   "0.05",   "0.1",   "0.25",   "0.5",
                                             "1",      "2.5",     "5",      "10",    "+Inf"};
const std::vector<std::string> kThroughputLe = {
    "65536",          "131072",         "262144",          "524288",          "1.048576e+06",   "2.097152e+06",
    "4.194304e+06",   "8.388608e+06",   "1.6777216e+07",   "3.3554432e+07",   "6.7108864e+07",  "1.34217728e+08",
    "2.68435456e+08", "5.36870912e+08", "1.073741824e+09", "2.147483648e+09", "4.294967296e+09", "8.589934592e+09",
    "+Inf"};

// The `_bucket` lines of one series: `labels` are the series' labels with a
// trailing comma (or empty), `cumulative` the expected count per bound.
std::vector<std::string> bucket_lines(const std::string& name, const std::string& labels,
                                      const std::vector<std::string>& le, const std::vector<int>& cumulative) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < le.size(); ++i)
    out.push_back(name + "_bucket{" + labels + "le=\"" + le[i] + "\"} " + std::to_string(cumulative.at(i)));
  return out;
}

constexpr std::uint64_t kMiB = 1 << 20;

// An upload request whose body took `body_time` to move upstream.
Exchange upload(Handler handler, Method method, int status, std::uint64_t bytes, std::chrono::nanoseconds body_time,
                std::string_view repository = "team/app") {
  auto e = exchange(handler, method, status, body_time + 5ms, bytes, 0);
  e.repository = repository;
  e.request_body_start = e.started + 1ms;
  e.request_body_end = e.request_body_start + body_time;
  e.upstream_headers = e.request_body_end + 1ms;
  e.response_body_start = e.upstream_headers + 1ms;
  return e;
}

// A download whose response body took `body_time` from its head being queued
// to its last byte being handed to the client.
Exchange download(Handler handler, Method method, int status, std::uint64_t bytes, std::chrono::nanoseconds body_time,
                  std::string_view repository = "library/nginx") {
  auto e = exchange(handler, method, status, 3ms + body_time, 0, bytes);
  e.repository = repository;
  e.request_body_start = e.started + 1ms;
  e.request_body_end = e.request_body_start;
  e.upstream_headers = e.started + 2ms;
  e.response_body_start = e.started + 3ms;
  return e;
}

TEST(RegmeterMetrics, HelpAndTypeLines) {
  Metrics metrics(1);
  auto& shard = metrics.shard(0);
  record(shard, upload(Handler::blob_upload_chunk, Method::patch, 202, 4 * kMiB, 1s));
  record(shard, download(Handler::manifest, Method::get, 200, 1500, 1ms));
  record(shard, upload(Handler::manifest, Method::put, 201, 1500, 1ms));
  record(shard, exchange(Handler::base, Method::get, 401));
  shard.upstream_connected(1ms);
  shard.upload_session_closed(SessionOutcome::completed, 1.5, 4 * kMiB);
  // Issue 16: an error code, a redirected blob GET, a whole pull.
  auto missing = exchange(Handler::manifest, Method::get, 404);
  missing.error = RegistryError::manifest_unknown;
  record(shard, missing);
  record(shard, download(Handler::blob, Method::get, 307, 0, 1ms));
  shard.image_pull_ended(EndedPull{PullOutcome::complete, 2.0, 4 * kMiB, 3, 3, 0});
  auto text = metrics.render_text();
  std::vector<std::string> regmeter_lines;
  for (const auto& l : lines_starting(text, "# "))
    if (l.find(" regmeter_") != std::string::npos) regmeter_lines.push_back(l);
  std::vector<std::string> expected = {
      "# HELP regmeter_auth_challenges_total Responses with status 401 (authentication challenges), by handler.",
      "# TYPE regmeter_auth_challenges_total counter",
      "# HELP regmeter_blob_bytes_total Blob body bytes moved: upload request bodies and blob GET response bodies, "
      "by repository and direction.",
      "# TYPE regmeter_blob_bytes_total counter",
      "# HELP regmeter_blob_redirects_total Blob GETs answered with a redirect (302/303/307/308: object storage "
      "serves the bytes, not the proxy), by repository.",
      "# TYPE regmeter_blob_redirects_total counter",
      "# HELP regmeter_blob_throughput_bytes_per_second Body transfer rate of blob uploads and downloads of at least "
      "1 MiB, in bytes per second.",
      "# TYPE regmeter_blob_throughput_bytes_per_second histogram",
      "# HELP regmeter_client_errors_total Requests answered with an error (5xx, or 4xx other than 401 challenges and "
      "404s to HEAD existence checks), by client family and handler.",
      "# TYPE regmeter_client_errors_total counter",
      "# HELP regmeter_client_requests_total Requests by the client family of their User-Agent, and handler.",
      "# TYPE regmeter_client_requests_total counter",
      "# HELP regmeter_http_request_duration_seconds The HTTP request latencies in seconds, with native buckets: the "
      "twin of registry_http_request_duration_seconds.",
      "# TYPE regmeter_http_request_duration_seconds histogram",
      "# HELP regmeter_image_pull_duration_seconds Seconds from the first manifest request of a whole image pull "
      "to the last blob byte delivered (redirected: to the last redirect answer), by outcome.",
      "# TYPE regmeter_image_pull_duration_seconds histogram",
      "# HELP regmeter_image_pull_size_bytes Blob body bytes a whole image pull delivered through the proxy, by "
      "outcome.",
      "# TYPE regmeter_image_pull_size_bytes histogram",
      "# HELP regmeter_image_pulls_total Manifest GETs answered 200 (image pulls; a HEAD is not a pull), by "
      "repository.",
      "# TYPE regmeter_image_pulls_total counter",
      "# HELP regmeter_image_pushes_total Manifest PUTs answered 201 (image pushes), by repository.",
      "# TYPE regmeter_image_pushes_total counter",
      "# HELP regmeter_registry_errors_total Answers with status 400-599, by the OCI error code of the first entry "
      "of their JSON errors array (other: a code outside the spec's table; none: no parseable error body).",
      "# TYPE regmeter_registry_errors_total counter",
      "# HELP regmeter_rejected_connections_total Connections refused before a request on them could be parsed (not "
      "counted in registry_http_*), by reason.",
      "# TYPE regmeter_rejected_connections_total counter",
      "# HELP regmeter_upload_session_duration_seconds Seconds from the first byte of the request that opened a blob "
      "upload session to the last byte of the response that ended it, by outcome.",
      "# TYPE regmeter_upload_session_duration_seconds histogram",
      "# HELP regmeter_upload_session_size_bytes Body bytes carried by all requests of a blob upload session, by "
      "outcome.",
      "# TYPE regmeter_upload_session_size_bytes histogram",
      "# HELP regmeter_upstream_connect_seconds Seconds to establish a new connection to the upstream.",
      "# TYPE regmeter_upstream_connect_seconds histogram",
      "# HELP regmeter_upstream_header_seconds Seconds from the first byte of a request to the arrival of the final "
      "response head from the upstream, sending of the request body included.",
      "# TYPE regmeter_upstream_header_seconds histogram",
  };
  EXPECT_EQ(regmeter_lines, expected);
  // regmeter_* sorts after registry_* ('i' < 'm'), the registry families keep their order.
  EXPECT_LT(text.find("# HELP registry_http_response_size_bytes"), text.find("# HELP regmeter_auth_challenges_total"));
}

TEST(RegmeterMetrics, UploadSessionHistogramsPerOutcome) {
  Metrics metrics(2);
  metrics.shard(0).upload_session_closed(SessionOutcome::completed, 0.05, 1024);          // lowest buckets, on the bound
  metrics.shard(1).upload_session_closed(SessionOutcome::completed, 3, 5 * kMiB);         // 5 s, 16 MiB buckets
  metrics.shard(0).upload_session_closed(SessionOutcome::completed, 4000, 20ull << 30);   // 7200 s, past 16 GiB
  metrics.shard(1).upload_session_closed(SessionOutcome::abandoned, 3600, 16ull << 30);   // exactly on the top bounds
  metrics.shard(1).upload_session_closed(SessionOutcome::mounted, 0.004, 0);
  auto text = metrics.render_text();

  const std::string duration = "regmeter_upload_session_duration_seconds";
  EXPECT_EQ(lines_starting(text, duration + "_bucket{outcome=\"completed\""),
            bucket_lines(duration, "outcome=\"completed\",", kSessionDurationLe,
                         {1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3}));
  EXPECT_LINE(text, duration + "_sum{outcome=\"completed\"} 4003.05");
  EXPECT_LINE(text, duration + "_count{outcome=\"completed\"} 3");
  EXPECT_EQ(lines_starting(text, duration + "_bucket{outcome=\"abandoned\""),
            bucket_lines(duration, "outcome=\"abandoned\",", kSessionDurationLe,
                         {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1}));
  EXPECT_LINE(text, duration + "_sum{outcome=\"abandoned\"} 3600");
  EXPECT_LINE(text, duration + "_sum{outcome=\"mounted\"} 0.004");

  const std::string size = "regmeter_upload_session_size_bytes";
  EXPECT_EQ(lines_starting(text, size + "_bucket{outcome=\"completed\""),
            bucket_lines(size, "outcome=\"completed\",", kSessionSizeLe, {1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 3}));
  EXPECT_LINE(text, size + "_sum{outcome=\"completed\"} 21480080384");
  EXPECT_LINE(text, size + "_count{outcome=\"completed\"} 3");
  EXPECT_EQ(lines_starting(text, size + "_bucket{outcome=\"abandoned\""),
            bucket_lines(size, "outcome=\"abandoned\",", kSessionSizeLe, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1}));
  EXPECT_LINE(text, size + "_bucket{outcome=\"mounted\",le=\"1024\"} 1");

  // Outcomes never closed have no series.
  EXPECT_EQ(text.find("outcome=\"cancelled\""), std::string::npos);
  EXPECT_EQ(text.find("outcome=\"failed\""), std::string::npos);
}

TEST(RegmeterMetrics, UploadSessionOddDurationsAreClamped) {
  Metrics metrics(1);
  metrics.shard(0).upload_session_closed(SessionOutcome::failed, -2.0, 10);
  metrics.shard(0).upload_session_closed(SessionOutcome::failed, std::numeric_limits<double>::quiet_NaN(), 10);
  auto text = metrics.render_text();
  EXPECT_LINE(text, R"(regmeter_upload_session_duration_seconds_bucket{outcome="failed",le="0.1"} 2)");
  EXPECT_LINE(text, R"(regmeter_upload_session_duration_seconds_sum{outcome="failed"} 0)");
}

TEST(RegmeterMetrics, UpstreamHeaderSecondsOnlyWhenAHeadArrived) {
  Metrics metrics(2);
  auto got_head = [](std::chrono::nanoseconds after_start) {
    auto e = exchange(Handler::blob_upload_chunk, Method::put, 201, after_start + 1ms, 0, 0);
    e.upstream_headers = e.started + after_start;
    return e;
  };
  record(metrics.shard(0), got_head(1ms));    // on the first bound
  record(metrics.shard(1), got_head(30ms));
  record(metrics.shard(1), got_head(90s));
  record(metrics.shard(0), got_head(2h));     // past the top bound
  // A 502 generated here: no head came from upstream.
  auto local = exchange(Handler::blob_upload_chunk, Method::put, 502);
  local.reached_upstream = false;
  record(metrics.shard(0), local);
  auto text = metrics.render_text();

  const std::string name = "regmeter_upstream_header_seconds";
  const std::string labels = R"(handler="blob_upload_chunk",method="put",)";
  EXPECT_EQ(lines_starting(text, name + "_bucket{"),
            bucket_lines(name, labels, kUpstreamHeaderLe,
                         {1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 4}));
  EXPECT_LINE(text, name + R"(_sum{handler="blob_upload_chunk",method="put"} 7290.031)");
  EXPECT_LINE(text, name + R"(_count{handler="blob_upload_chunk",method="put"} 4)");
  // The registry histogram still counts all five.
  EXPECT_LINE(text, R"(registry_http_request_duration_seconds_count{handler="blob_upload_chunk",method="put"} 5)");
}

TEST(RegmeterMetrics, UpstreamConnectSeconds) {
  Metrics metrics(2);
  metrics.shard(0).upstream_connected(std::chrono::microseconds(100));  // on the first bound
  metrics.shard(1).upstream_connected(std::chrono::microseconds(300));
  metrics.shard(1).upstream_connected(12s);
  metrics.shard(0).upstream_connected(-5ms);  // a clock oddity counts as 0
  auto text = metrics.render_text();
  const std::string name = "regmeter_upstream_connect_seconds";
  EXPECT_EQ(lines_starting(text, name + "_bucket{"),
            bucket_lines(name, "", kConnectLe, {2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 4}));
  EXPECT_LINE(text, name + "_sum 12.0004");
  EXPECT_LINE(text, name + "_count 4");
}

TEST(RegmeterMetrics, UploadThroughput) {
  Metrics metrics(1);
  auto& shard = metrics.shard(0);
  // 4 MiB over 2 s = 2097152 B/s: exactly on the 2.097152e+06 bound.
  record(shard, upload(Handler::blob_upload_chunk, Method::patch, 202, 4 * kMiB, 2s));
  // A monolithic PUT of 64 MiB in 250 ms = 268435456 B/s.
  record(shard, upload(Handler::blob_upload_chunk, Method::put, 201, 64 * kMiB, 250ms));
  // A POST ?digest= carrying the whole blob, 1 MiB exactly, in 1 s.
  record(shard, upload(Handler::blob_upload, Method::post, 201, kMiB, 1s));
  // Bytes moved are bytes moved, whatever the answer.
  record(shard, upload(Handler::blob_upload_chunk, Method::patch, 416, 2 * kMiB, 1s));
  // Not observed: under 1 MiB, no body time, unset time points, other handlers/methods.
  record(shard, upload(Handler::blob_upload_chunk, Method::patch, 202, kMiB - 1, 1s));
  record(shard, upload(Handler::blob_upload_chunk, Method::patch, 202, 8 * kMiB, 0s));
  auto unset = upload(Handler::blob_upload_chunk, Method::patch, 202, 8 * kMiB, 1s);
  unset.request_body_start = Clock::time_point{};
  record(shard, unset);
  record(shard, upload(Handler::manifest, Method::put, 201, 8 * kMiB, 1s));
  record(shard, upload(Handler::blob_upload_chunk, Method::delete_, 204, 8 * kMiB, 1s));
  auto text = metrics.render_text();

  const std::string name = "regmeter_blob_throughput_bytes_per_second";
  EXPECT_EQ(lines_starting(text, name + "_bucket{direction=\"upload\""),
            bucket_lines(name, "direction=\"upload\",", kThroughputLe,
                         {0, 0, 0, 0, 1, 3, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4}));
  EXPECT_LINE(text, name + "_sum{direction=\"upload\"} 273678336");  // 2097152 + 268435456 + 1048576 + 2097152
  EXPECT_LINE(text, name + "_count{direction=\"upload\"} 4");
  EXPECT_EQ(text.find(name + "_count{direction=\"download\"}"), std::string::npos);
}

TEST(RegmeterMetrics, DownloadThroughput) {
  Metrics metrics(1);
  auto& shard = metrics.shard(0);
  // 8 MiB in 500 ms = 16777216 B/s.
  record(shard, download(Handler::blob, Method::get, 200, 8 * kMiB, 500ms));
  // A ranged part: 1 MiB in 8 s = 131072 B/s.
  record(shard, download(Handler::blob, Method::get, 206, kMiB, 8s));
  // Not observed: a redirect, an error, a HEAD, a manifest, too small, no body time.
  record(shard, download(Handler::blob, Method::get, 307, 2 * kMiB, 1s));
  record(shard, download(Handler::blob, Method::get, 404, 2 * kMiB, 1s));
  record(shard, download(Handler::blob, Method::head, 200, 2 * kMiB, 1s));
  record(shard, download(Handler::manifest, Method::get, 200, 2 * kMiB, 1s));
  record(shard, download(Handler::blob, Method::get, 200, kMiB - 1, 1s));
  record(shard, download(Handler::blob, Method::get, 200, 2 * kMiB, 0s));
  auto text = metrics.render_text();

  const std::string name = "regmeter_blob_throughput_bytes_per_second";
  EXPECT_EQ(lines_starting(text, name + "_bucket{direction=\"download\""),
            bucket_lines(name, "direction=\"download\",", kThroughputLe,
                         {0, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2}));
  EXPECT_LINE(text, name + "_sum{direction=\"download\"} 16908288");
  EXPECT_LINE(text, name + "_count{direction=\"download\"} 2");
  EXPECT_EQ(text.find(name + "_count{direction=\"upload\"}"), std::string::npos);
}

TEST(RegmeterMetrics, PushesAndPullsPerRepository) {
  Metrics metrics(2);
  auto manifest = [](Method method, int status, std::string_view repository) {
    auto e = exchange(Handler::manifest, method, status);
    e.repository = repository;
    return e;
  };
  record(metrics.shard(0), manifest(Method::put, 201, "team/app"));
  record(metrics.shard(1), manifest(Method::put, 201, "team/app"));
  record(metrics.shard(0), manifest(Method::put, 400, "team/app"));   // a failed push
  record(metrics.shard(0), manifest(Method::put, 401, "team/app"));   // a challenge, retried
  record(metrics.shard(1), manifest(Method::get, 200, "team/app"));
  record(metrics.shard(1), manifest(Method::get, 200, "library/nginx"));
  record(metrics.shard(0), manifest(Method::get, 200, "library/nginx"));
  record(metrics.shard(0), manifest(Method::head, 200, "library/nginx"));  // a HEAD is not a pull
  record(metrics.shard(0), manifest(Method::head, 200, "only/headed"));
  record(metrics.shard(1), manifest(Method::get, 404, "library/nginx"));
  record(metrics.shard(1), manifest(Method::get, 304, "library/nginx"));
  record(metrics.shard(1), manifest(Method::delete_, 202, "team/app"));
  auto text = metrics.render_text();
  EXPECT_EQ(lines_starting(text, "regmeter_image_pushes_total"),
            (std::vector<std::string>{R"(regmeter_image_pushes_total{repository="team/app"} 2)"}));
  EXPECT_EQ(lines_starting(text, "regmeter_image_pulls_total"),
            (std::vector<std::string>{R"(regmeter_image_pulls_total{repository="library/nginx"} 2)",
                                      R"(regmeter_image_pulls_total{repository="team/app"} 1)"}));
  // Only what counted takes a repository slot: a HEAD-only repository does not.
  EXPECT_EQ(text.find("only/headed"), std::string::npos);
}

TEST(RegmeterMetrics, BlobBytesPerRepositoryAndDirection) {
  Metrics metrics(2);
  // A docker-style push: POST, chunked PATCH, empty PUT; a failed PATCH still moved its bytes.
  record(metrics.shard(0), upload(Handler::blob_upload, Method::post, 202, 0, 0s));
  record(metrics.shard(1), upload(Handler::blob_upload_chunk, Method::patch, 202, 3000000, 1s));
  record(metrics.shard(0), upload(Handler::blob_upload_chunk, Method::put, 201, 0, 0s));
  record(metrics.shard(0), upload(Handler::blob_upload_chunk, Method::patch, 416, 500, 1ms));
  // Pulls: a 200 and a 206 count; a HEAD moves no body and does not count.
  record(metrics.shard(1), download(Handler::blob, Method::get, 200, 29150000, 1s));
  record(metrics.shard(0), download(Handler::blob, Method::get, 206, 1000, 1ms));
  record(metrics.shard(0), download(Handler::blob, Method::head, 200, 0, 0s));
  // Only a POST so far: the series exists with 0.
  record(metrics.shard(1), upload(Handler::blob_upload, Method::post, 202, 0, 0s, "fresh/repo"));
  auto text = metrics.render_text();
  EXPECT_EQ(lines_starting(text, "regmeter_blob_bytes_total"),
            (std::vector<std::string>{
                R"(regmeter_blob_bytes_total{direction="download",repository="library/nginx"} 29151000)",
                R"(regmeter_blob_bytes_total{direction="upload",repository="fresh/repo"} 0)",
                R"(regmeter_blob_bytes_total{direction="upload",repository="team/app"} 3000500)",
            }));
}

TEST(RegmeterMetrics, AuthChallengesPerHandler) {
  Metrics metrics(2);
  record(metrics.shard(0), exchange(Handler::base, Method::get, 401));
  record(metrics.shard(1), exchange(Handler::base, Method::get, 401));
  record(metrics.shard(1), exchange(Handler::blob_upload, Method::post, 401));
  record(metrics.shard(0), exchange(Handler::manifest, Method::head, 401));
  record(metrics.shard(0), exchange(Handler::manifest, Method::head, 403));
  record(metrics.shard(0), exchange(Handler::base, Method::get, 200));
  auto text = metrics.render_text();
  EXPECT_EQ(lines_starting(text, "regmeter_auth_challenges_total"),
            (std::vector<std::string>{
                R"(regmeter_auth_challenges_total{handler="base"} 2)",
                R"(regmeter_auth_challenges_total{handler="blob_upload"} 1)",
                R"(regmeter_auth_challenges_total{handler="manifest"} 1)",
            }));
  EXPECT_LINE(text, R"(registry_http_requests_total{code="401",handler="base",method="get"} 2)");
}

Exchange push(std::string_view repository) {
  auto e = exchange(Handler::manifest, Method::put, 201);
  e.repository = repository;
  return e;
}

TEST(RegmeterMetrics, RepositoryLabelIsBoundedProcessWide) {
  Metrics metrics(2, MetricsOptions{.max_repositories = 2});
  std::string first = "alpha/one";  // the Exchange only borrows the name
  record(metrics.shard(0), push(first));
  first.assign("xxxxxxxxx");
  record(metrics.shard(1), push("beta/two"));
  record(metrics.shard(1), push("gamma/three"));  // third distinct name: __other__
  record(metrics.shard(0), push("gamma/three"));  // on the other shard too
  record(metrics.shard(0), push("beta/two"));     // named by shard 1, still its own slot on shard 0
  record(metrics.shard(1), push("alpha/one"));
  record(metrics.shard(0), push("delta/four"));
  record(metrics.shard(1), push("epsilon/five"));
  auto e = upload(Handler::blob_upload_chunk, Method::patch, 202, 100, 1ms, "delta/four");
  record(metrics.shard(1), e);
  e.repository = "beta/two";
  record(metrics.shard(0), e);
  auto text = metrics.render_text();
  EXPECT_EQ(lines_starting(text, "regmeter_image_pushes_total"),
            (std::vector<std::string>{
                R"(regmeter_image_pushes_total{repository="__other__"} 4)",
                R"(regmeter_image_pushes_total{repository="alpha/one"} 2)",
                R"(regmeter_image_pushes_total{repository="beta/two"} 2)",
            }));
  EXPECT_EQ(lines_starting(text, "regmeter_blob_bytes_total"),
            (std::vector<std::string>{
                R"(regmeter_blob_bytes_total{direction="upload",repository="__other__"} 100)",
                R"(regmeter_blob_bytes_total{direction="upload",repository="beta/two"} 100)",
            }));

  // Stable: later names never displace the first two.
  for (int i = 0; i < 50; ++i) record(metrics.shard(i % 2), push("later/" + std::to_string(i)));
  record(metrics.shard(1), push("alpha/one"));
  text = metrics.render_text();
  EXPECT_EQ(lines_starting(text, "regmeter_image_pushes_total"),
            (std::vector<std::string>{
                R"(regmeter_image_pushes_total{repository="__other__"} 54)",
                R"(regmeter_image_pushes_total{repository="alpha/one"} 3)",
                R"(regmeter_image_pushes_total{repository="beta/two"} 2)",
            }));
}

TEST(RegmeterMetrics, MaxRepositoriesZeroDropsTheLabel) {
  Metrics metrics(2, MetricsOptions{.max_repositories = 0});
  record(metrics.shard(0), push("alpha/one"));
  record(metrics.shard(1), push("beta/two"));
  auto pull = push("alpha/one");
  pull.method = Method::get;
  pull.status = 200;
  record(metrics.shard(1), pull);
  record(metrics.shard(0), upload(Handler::blob_upload_chunk, Method::patch, 202, 700, 1ms, "alpha/one"));
  record(metrics.shard(1), upload(Handler::blob_upload_chunk, Method::put, 201, 300, 1ms, "beta/two"));
  record(metrics.shard(1), download(Handler::blob, Method::get, 200, 5000, 1ms, "gamma/three"));
  auto text = metrics.render_text();
  EXPECT_EQ(text.find("repository="), std::string::npos);
  EXPECT_EQ(lines_starting(text, "regmeter_image_pushes_total"),
            (std::vector<std::string>{"regmeter_image_pushes_total 2"}));
  EXPECT_EQ(lines_starting(text, "regmeter_image_pulls_total"),
            (std::vector<std::string>{"regmeter_image_pulls_total 1"}));
  EXPECT_EQ(lines_starting(text, "regmeter_blob_bytes_total"),
            (std::vector<std::string>{
                R"(regmeter_blob_bytes_total{direction="download"} 5000)",
                R"(regmeter_blob_bytes_total{direction="upload"} 1000)",
            }));
}

TEST(RegmeterMetrics, EmptyRepositoryCountsAsOther) {
  Metrics metrics(1);
  record(metrics.shard(0), push(""));
  auto text = metrics.render_text();
  EXPECT_LINE(text, R"(regmeter_image_pushes_total{repository="__other__"} 1)");
}

// Many threads meeting many names at once: no more than N names ever get a
// label, every push is counted exactly once, and each name keeps one slot.
TEST(RegmeterMetrics, ConcurrentRepositoryAssignment) {
  constexpr std::size_t kThreads = 4;
  constexpr std::size_t kMax = 10;
  constexpr int kNames = 40;
  constexpr int kRounds = 200;
  Metrics metrics(kThreads, MetricsOptions{.max_repositories = kMax});
  std::vector<std::thread> workers;
  for (std::size_t t = 0; t < kThreads; ++t)
    workers.emplace_back([&, t] {
      for (int r = 0; r < kRounds; ++r)
        for (int n = 0; n < kNames; ++n)
          record(metrics.shard(t), push("repo/" + std::to_string((n + static_cast<int>(t) * 7) % kNames)));
    });
  EXPECT_FALSE(metrics.render_text().empty());  // a scrape while names are being assigned
  for (auto& w : workers) w.join();
  auto text = metrics.render_text();
  auto lines = lines_starting(text, "regmeter_image_pushes_total{");
  ASSERT_EQ(lines.size(), kMax + 1);
  std::regex line_re(R"re(regmeter_image_pushes_total\{repository="([^"]+)"\} (\d+))re");
  std::uint64_t total = 0;
  for (const auto& l : lines) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(l, m, line_re)) << l;
    auto count = std::stoull(m[2]);
    total += count;
    if (m[1] != "__other__") {
      EXPECT_EQ(count, kThreads * kRounds) << l;  // all of a named repo's pushes
    }
  }
  EXPECT_EQ(total, kThreads * kRounds * kNames);
}

// A shard made on its own (not by Metrics) records, and has a repository
// table of its own: its names take no slot of a Metrics' table.
TEST(RegmeterMetrics, StandaloneShardWorks) {
  Metrics metrics(1, MetricsOptions{.max_repositories = 1});
  MetricsShard shard;
  record(shard, push("team/app"));
  shard.request_started(Handler::blob);  // one left in flight
  shard.upstream_connected(1ms);
  shard.upload_session_closed(SessionOutcome::cancelled, 1, 0);
  auto activity = shard.activity();
  EXPECT_EQ(activity.started, 2u);
  EXPECT_EQ(activity.in_flight, 1);
  EXPECT_EQ(metrics.activity().started, 0u) << "the standalone shard is no shard of `metrics`";

  record(metrics.shard(0), push("other/repo"));
  auto text = metrics.render_text();
  EXPECT_LINE(text, R"(regmeter_image_pushes_total{repository="other/repo"} 1)");
  EXPECT_EQ(text.find("team/app"), std::string::npos) << text;
  EXPECT_EQ(text.find("__other__"), std::string::npos) << "the one slot went to other/repo:\n" << text;
}

TEST(RegmeterMetrics, PromtoolAcceptsEveryFamily) {
  auto promtool = require_promtool();
  ASSERT_FALSE(promtool.empty());

  Metrics metrics(2, MetricsOptions{.max_repositories = 1});
  auto& a = metrics.shard(0);
  auto& b = metrics.shard(1);
  record(a, upload(Handler::blob_upload, Method::post, 202, 0, 0s));
  record(b, upload(Handler::blob_upload_chunk, Method::patch, 202, 52 * kMiB, 2400ms));
  record(a, upload(Handler::blob_upload_chunk, Method::put, 201, 0, 0s));
  record(b, upload(Handler::manifest, Method::put, 201, 1500, 1ms, "other/repo"));
  record(a, download(Handler::manifest, Method::get, 200, 1570, 1ms));
  record(b, download(Handler::blob, Method::get, 200, 29 * kMiB, 850ms));
  record(a, exchange(Handler::base, Method::get, 401));
  record(b, exchange(Handler::other, Method::other, 0));
  a.upstream_connected(std::chrono::microseconds(420));
  for (std::size_t o = 0; o < kSessionOutcomeCount; ++o)
    b.upload_session_closed(static_cast<SessionOutcome>(o), 2.5 * static_cast<double>(o + 1), (o + 1) * kMiB);
  a.request_started(Handler::blob);  // one left in flight
  b.connection_rejected(RejectReason::not_http);
  auto text = metrics.render_text();

  for (const char* family :
       {"registry_http_in_flight_requests", "registry_http_requests_total", "registry_http_request_duration_seconds",
        "registry_http_request_size_bytes", "registry_http_response_size_bytes", "regmeter_upload_session_duration_seconds",
        "regmeter_upload_session_size_bytes", "regmeter_upstream_header_seconds", "regmeter_upstream_connect_seconds",
        "regmeter_blob_throughput_bytes_per_second", "regmeter_image_pushes_total", "regmeter_image_pulls_total",
        "regmeter_blob_bytes_total", "regmeter_auth_challenges_total", "regmeter_rejected_connections_total"})
    EXPECT_NE(text.find(std::string("# TYPE ") + family + " "), std::string::npos) << family;
  EXPECT_EQ(promtool_check(promtool, text), "");

  Metrics unlabelled(1, MetricsOptions{.max_repositories = 0});
  record(unlabelled.shard(0), push("team/app"));
  record(unlabelled.shard(0), download(Handler::blob, Method::get, 200, 2 * kMiB, 1s));
  EXPECT_EQ(promtool_check(promtool, unlabelled.render_text()), "");
}

}  // namespace
}  // namespace regmeter
