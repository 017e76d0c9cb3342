// /metrics in its three formats, from real recordings: Accept negotiation,
// the text format unchanged, OpenMetrics with exemplars (read back by
// prometheus_client's strict parser), protobuf with native buckets on the
// regmeter_* histograms only (decoded by protoc).
#include "core/exposition_format.h"
#include "core/metrics.h"
#include "metrics_test_util.h"

#include <gtest/gtest.h>

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <cstdlib>
#include <new>
#include <sstream>
#include <string>
#include <vector>

#include "protobuf_decode.h"
#include "run_tool.h"

// Counts heap allocations made by this thread while `counting` is set.
namespace {
thread_local bool counting = false;
thread_local std::size_t allocations = 0;
}  // namespace

void* operator new(std::size_t size) {
  if (counting) ++allocations;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
// The replacement pair is malloc/free on purpose; GCC cannot see that.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
// The nothrow forms too (std::stable_sort's temporary buffer uses them):
// otherwise ASan's own nothrow new meets the free() below.
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  if (counting) ++allocations;
  return std::malloc(size == 0 ? 1 : size);
}
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace regmeter {
namespace {

using namespace std::chrono_literals;
using testing::has_line;
using testing::lines_of;
using testing::lines_starting;
using testing::record;

// What Prometheus 2.42 sends (scrape/scrape.go), without and with
// --enable-feature=native-histograms.
constexpr const char* kPrometheusDefaultAccept =
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
constexpr const char* kPrometheusNativeAccept =
    "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,"
    "application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

TEST(Negotiation, WhatPrometheusAndOthersAskFor) {
  EXPECT_EQ(negotiate_exposition(kPrometheusDefaultAccept), ExpositionFormat::openmetrics);
  EXPECT_EQ(negotiate_exposition(kPrometheusNativeAccept), ExpositionFormat::protobuf);
  EXPECT_EQ(negotiate_exposition(""), ExpositionFormat::text);
  EXPECT_EQ(negotiate_exposition("*/*"), ExpositionFormat::text);  // curl
  EXPECT_EQ(negotiate_exposition("text/plain"), ExpositionFormat::text);
  EXPECT_EQ(negotiate_exposition("application/json"), ExpositionFormat::text);  // nothing we serve: text
}

TEST(Negotiation, QualityOrderAndParameters) {
  EXPECT_EQ(negotiate_exposition("text/plain;q=0.9, application/openmetrics-text; version=1.0.0"),
            ExpositionFormat::openmetrics);
  EXPECT_EQ(negotiate_exposition("application/openmetrics-text;q=0.2, text/plain;version=0.0.4;q=0.3"),
            ExpositionFormat::text);
  // Equal q: the first listed.
  EXPECT_EQ(negotiate_exposition("application/openmetrics-text, text/plain"), ExpositionFormat::openmetrics);
  EXPECT_EQ(negotiate_exposition("text/plain, application/openmetrics-text"), ExpositionFormat::text);
  // Only OpenMetrics 1.0.0 is ours; 0.0.1 falls through.
  EXPECT_EQ(negotiate_exposition("application/openmetrics-text;version=0.0.1"), ExpositionFormat::text);
  // protobuf needs the MetricFamily proto, delimited.
  EXPECT_EQ(negotiate_exposition("application/vnd.google.protobuf"), ExpositionFormat::text);
  EXPECT_EQ(negotiate_exposition("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
                                 "encoding=text"),
            ExpositionFormat::text);
  EXPECT_EQ(negotiate_exposition("APPLICATION/VND.GOOGLE.PROTOBUF; Proto=\"io.prometheus.client.MetricFamily\""),
            ExpositionFormat::protobuf);
  // q=0 refuses; a malformed q drops the range.
  EXPECT_EQ(negotiate_exposition("application/openmetrics-text;q=0, text/plain;q=0.1"), ExpositionFormat::text);
  EXPECT_EQ(negotiate_exposition("application/openmetrics-text;q=abc"), ExpositionFormat::text);
  EXPECT_EQ(negotiate_exposition("application/openmetrics-text;q=1.5"), ExpositionFormat::text);
  EXPECT_EQ(negotiate_exposition(",,;;=,"), ExpositionFormat::text);
}

TEST(Negotiation, ContentTypes) {
  EXPECT_EQ(content_type_of(ExpositionFormat::text), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(content_type_of(ExpositionFormat::openmetrics), "application/openmetrics-text; version=1.0.0; charset=utf-8");
  EXPECT_EQ(content_type_of(ExpositionFormat::protobuf),
            "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited");
}

constexpr std::int64_t kFinishedUnixNs = 1'764'000'000'123'000'000;

Exchange traced_exchange(Handler handler, Method method, int status, std::chrono::nanoseconds duration,
                         RequestId id, bool with_trace) {
  Exchange e = testing::answered_exchange(handler, method, status, duration);
  e.upstream_headers = e.started + duration / 2;
  e.request_id = id;
  if (with_trace) e.trace_id = *parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  e.finished_unix_ns = kFinishedUnixNs;
  return e;
}


std::string hex(RequestId id) {
  auto h = to_hex(id);
  return std::string(h.data(), h.size());
}

struct Recorded {
  Metrics metrics{2};
  RequestId first{0x1111, 0x1};
  RequestId second{0x2222, 0x2};  // later, on another shard
  RequestId plain{0x3333, 0x3};
  Recorded() {
    record(metrics.shard(0), traced_exchange(Handler::blob_upload_chunk, Method::put, 201, 300ms, first, false));
    auto later = traced_exchange(Handler::blob_upload_chunk, Method::put, 201, 310ms, second, true);
    later.finished_unix_ns += 1'000'000;
    record(metrics.shard(1), later);
    record(metrics.shard(0), traced_exchange(Handler::base, Method::get, 401, 2ms, plain, false));
    Exchange anonymous = traced_exchange(Handler::base, Method::get, 200, 2ms, RequestId{}, false);
    record(metrics.shard(1), anonymous);  // no id: counted, no exemplar
    metrics.registry();
    prometheus::BuildCounter().Name("regmeter_cold_total").Help("Cold path.").Register(metrics.registry()).Add({}).Increment();
  }
};

TEST(MetricsExposition, TextIsUnchangedAndHasNoExemplars) {
  Recorded r;
  auto text = r.metrics.render(ExpositionFormat::text);
  EXPECT_EQ(text, r.metrics.render_text());
  EXPECT_EQ(text.find(" # {"), std::string::npos) << text;
  EXPECT_EQ(text.find("# EOF"), std::string::npos);
  // The native twin is an ordinary classic histogram in the text format.
  EXPECT_LINE(text, R"(regmeter_http_request_duration_seconds_bucket{handler="blob_upload_chunk",method="put",le="0.5"} 2)");
  EXPECT_LINE(text, R"(registry_http_request_duration_seconds_bucket{handler="blob_upload_chunk",method="put",le="0.5"} 2)");
  EXPECT_LINE(text, "regmeter_cold_total 1");
}

TEST(MetricsExposition, OpenMetricsCarriesTheLatestExemplarPerBucketAndCounter) {
  Recorded r;
  auto om = r.metrics.render(ExpositionFormat::openmetrics);
  ASSERT_GE(om.size(), 6u);
  EXPECT_EQ(om.substr(om.size() - 6), "# EOF\n");
  std::string traced = "request_id=\"" + hex(r.second) + "\",trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\"";
  // Both PUTs landed in (0.25, 0.5]: the later one (shard 1) is kept.
  EXPECT_LINE(om, R"(registry_http_request_duration_seconds_bucket{handler="blob_upload_chunk",method="put",le="0.5"} 2 # {)" +
                      traced + "} 0.31 1764000000.124");
  EXPECT_LINE(om, R"(regmeter_http_request_duration_seconds_bucket{handler="blob_upload_chunk",method="put",le="0.5"} 2 # {)" +
                      traced + "} 0.31 1764000000.124");
  EXPECT_LINE(om, R"(registry_http_requests_total{code="201",handler="blob_upload_chunk",method="put"} 2 # {)" + traced +
                      "} 1 1764000000.124");
  EXPECT_LINE(om, R"(registry_http_requests_total{code="401",handler="base",method="get"} 1 # {request_id=")" +
                      hex(r.plain) + "\"} 1 1764000000.123");
  EXPECT_LINE(om, R"(regmeter_auth_challenges_total{handler="base"} 1 # {request_id=")" + hex(r.plain) +
                      "\"} 1 1764000000.123");
  // The request without an id wrote no exemplar; cumulative buckets above it carry none.
  EXPECT_LINE(om, R"(registry_http_requests_total{code="200",handler="base",method="get"} 1)");
  EXPECT_LINE(om, R"(registry_http_request_duration_seconds_bucket{handler="base",method="get",le="0.005"} 2 # {request_id=")" +
                      hex(r.plain) + "\"} 0.002 1764000000.123");
  EXPECT_LINE(om, R"(registry_http_request_duration_seconds_bucket{handler="base",method="get",le="0.01"} 2)");
  EXPECT_LINE(om, "regmeter_cold_total 1");
  EXPECT_LINE(om, "# TYPE regmeter_http_request_duration_seconds histogram");
  EXPECT_LINE(om, "# UNIT regmeter_http_request_duration_seconds seconds");

  // An independent strict parser reads all of it.
  std::string python = test::env("DEBIAN_PYTHON"), script = test::env("OPENMETRICS_PARSE");
  ASSERT_FALSE(python.empty() || script.empty()) << "DEBIAN_PYTHON and OPENMETRICS_PARSE must be set";
  auto parsed = test::run_tool(test::shell_quote(python) + " " + test::shell_quote(script), om);
  EXPECT_EQ(parsed.exit_code, 0) << parsed.err << "\nfor:\n" << om;
  EXPECT_NE(parsed.out.find("exemplar {request_id=" + hex(r.second) + ";trace_id=4bf92f3577b34da6a3ce929d0e0e4736}"),
            std::string::npos)
      << parsed.out;
}

// The decoded MetricFamily of `name`, or empty.
std::string decoded_family(const std::vector<std::string>& decoded, const std::string& name) {
  for (const auto& d : decoded)
    if (d.find("name: \"" + name + "\"\n") == 0) return d;
  return {};
}

TEST(MetricsExposition, ProtobufHasNativeBucketsOnRegmeterHistogramsOnly) {
  Recorded r;
  auto stream = r.metrics.render(ExpositionFormat::protobuf);
  std::vector<std::string> decoded;
  for (const auto& message : test::split_delimited(stream)) decoded.push_back(test::decode(message));
  ASSERT_FALSE(decoded.empty());

  auto twin = decoded_family(decoded, "regmeter_http_request_duration_seconds");
  ASSERT_FALSE(twin.empty());
  EXPECT_NE(twin.find("schema: 3\n"), std::string::npos) << twin;
  EXPECT_NE(twin.find("positive_span {"), std::string::npos) << twin;
  EXPECT_NE(twin.find("zero_threshold:"), std::string::npos) << twin;
  // Its exemplars ride on the classic buckets (where Prometheus 2.42 reads them).
  EXPECT_NE(twin.find("value: \"" + hex(r.second) + "\""), std::string::npos) << twin;
  // No explicit +Inf bucket: Prometheus derives it from sample_count.
  EXPECT_EQ(twin.find("upper_bound: inf"), std::string::npos) << twin;

  for (const char* classic_only : {"registry_http_request_duration_seconds", "registry_http_request_size_bytes",
                                   "registry_http_response_size_bytes"}) {
    auto f = decoded_family(decoded, classic_only);
    ASSERT_FALSE(f.empty()) << classic_only;
    EXPECT_EQ(f.find("schema:"), std::string::npos) << f;
    EXPECT_EQ(f.find("positive_span"), std::string::npos) << f;
    EXPECT_NE(f.find("bucket {"), std::string::npos) << f;
  }
  // Every other regmeter_* histogram recorded here carries native buckets too.
  auto header = decoded_family(decoded, "regmeter_upstream_header_seconds");
  EXPECT_NE(header.find("schema: 3\n"), std::string::npos) << header;

  auto requests = decoded_family(decoded, "registry_http_requests_total");
  EXPECT_NE(requests.find("value: \"" + hex(r.plain) + "\""), std::string::npos) << requests;
  EXPECT_FALSE(decoded_family(decoded, "regmeter_cold_total").empty());
}

// The shared histogram type gives native buckets to every regmeter_*
// histogram, and none to registry_http_*: checked over every family the
// recordings below produce, so a family added later is covered too.
TEST(MetricsExposition, EveryRegmeterHistogramIsNativeAndNoRegistryOne) {
  Metrics metrics(1);
  auto e = traced_exchange(Handler::blob_upload_chunk, Method::put, 201, 2s, RequestId{5, 5}, false);
  e.request_body_bytes = 8 << 20;
  e.request_body_start = e.started + 1ms;
  e.request_body_end = e.finished - 1ms;
  e.repository = "team/app";
  record(metrics.shard(0), e);
  auto pull = traced_exchange(Handler::blob, Method::get, 200, 1s, RequestId{6, 6}, false);
  pull.response_body_bytes = 4 << 20;
  pull.response_body_start = pull.started + 1ms;
  record(metrics.shard(0), pull);
  metrics.shard(0).upstream_connected(2ms);
  metrics.shard(0).upload_session_closed(SessionOutcome::completed, 3.5, 8 << 20);

  auto stream = metrics.render(ExpositionFormat::protobuf);
  std::size_t regmeter_histograms = 0, registry_histograms = 0;
  for (const auto& message : test::split_delimited(stream)) {
    auto d = test::decode(message);
    if (d.find("type: HISTOGRAM\n") == std::string::npos) continue;
    bool native = d.find("schema: 3\n") != std::string::npos;
    if (d.find("name: \"regmeter_") == 0) {
      ++regmeter_histograms;
      EXPECT_TRUE(native) << "regmeter_* histogram without native buckets:\n" << d;
    } else if (d.find("name: \"registry_http_") == 0) {
      ++registry_histograms;
      EXPECT_FALSE(native) << "registry_http_* histogram with native buckets:\n" << d;
    }
  }
  // regmeter_http_request_duration_seconds, _upstream_header_seconds, _upstream_connect_seconds,
  // _blob_throughput_bytes_per_second, _upload_session_duration_seconds, _upload_session_size_bytes.
  EXPECT_EQ(regmeter_histograms, 6u);
  EXPECT_EQ(registry_histograms, 3u);
}

// Exemplars and native buckets cost no allocation per request: once a
// series exists (and its native window covers the values), recording more
// requests with ids and trace ids allocates nothing.
TEST(MetricsExposition, RecordingWithExemplarsDoesNotAllocate) {
  Metrics metrics(1);
  auto& shard = metrics.shard(0);
  std::vector<Exchange> exchanges;
  for (int i = 0; i < 8; ++i) {
    auto e = traced_exchange(i % 2 ? Handler::blob_upload_chunk : Handler::manifest, i % 2 ? Method::put : Method::get,
                             i % 2 ? 201 : 200, std::chrono::milliseconds(3 + 97 * i), RequestId{9, std::uint64_t(i)},
                             i % 3 == 0);
    e.repository = "team/app";
    exchanges.push_back(e);
  }
  for (const auto& e : exchanges) record(shard, e);  // warm-up: series and windows are created
  counting = true;
  for (int round = 0; round < 100; ++round)
    for (auto& e : exchanges) {
      e.request_id.thread_and_sequence += 8;
      e.finished_unix_ns += 1000;
      record(shard, e);
    }
  counting = false;
  EXPECT_EQ(allocations, 0u);
  // The counter does see allocations (a scrape makes many).
  counting = true;
  auto scraped = metrics.render(ExpositionFormat::protobuf);
  counting = false;
  EXPECT_GT(allocations, 0u);
  // And the exemplars were written: the last request's id is in the exposition.
  auto om = metrics.render(ExpositionFormat::openmetrics);
  EXPECT_NE(om.find(hex(exchanges.back().request_id)), std::string::npos);
}

TEST(MetricsExposition, NativeBucketsFollowTheObservations) {
  Metrics metrics(1);
  for (int i = 0; i < 100; ++i)
    record(metrics.shard(0), traced_exchange(Handler::manifest, Method::get, 200, 1000ms, RequestId{1, 1}, false));
  auto stream = metrics.render(ExpositionFormat::protobuf);
  std::vector<std::string> decoded;
  for (const auto& message : test::split_delimited(stream)) decoded.push_back(test::decode(message));
  auto twin = decoded_family(decoded, "regmeter_http_request_duration_seconds");
  // 1 s is the upper bound of bucket 0: one span at offset 0, one bucket of 100.
  EXPECT_NE(twin.find("positive_span {\n      offset: 0\n      length: 1\n    }\n    positive_delta: 100\n"),
            std::string::npos)
      << twin;
  EXPECT_NE(twin.find("sample_count: 100\n"), std::string::npos) << twin;
}

}  // namespace
}  // namespace regmeter
