// Every family regmeter exports, as it exists today, written out by hand:
// the declarations (core/metric_families.h) must match this list, and a
// /metrics scrape with every family populated must carry each one with its
// declared name, help, type and label names. A typo in a declaration, a
// family added without a declaration, or one lost on the way fails here.
#include "core/metric_families.h"
#include "core/metric_process_counters.h"
#include "core/metrics.h"
#include "core/pull_sessions.h"
#include "metrics_test_util.h"
#include "net/metering.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

namespace regmeter {
namespace {

using testing::answered_exchange;
using testing::lines_of;
using testing::record;

struct Expected {
  std::string type;
  std::vector<std::string> labels;  // in the order written, `le` not included
};

// The families of today. Keep in step with docs/metrics.md (dashboards and
// alerts depend on every name here).
const std::map<std::string, Expected>& expected_families() {
  static const std::map<std::string, Expected> families = {
      {"registry_http_in_flight_requests", {"gauge", {"handler"}}},
      {"registry_http_requests_total", {"counter", {"code", "handler", "method"}}},
      {"registry_http_request_duration_seconds", {"histogram", {"handler", "method"}}},
      {"registry_http_request_size_bytes", {"histogram", {"handler"}}},
      {"registry_http_response_size_bytes", {"histogram", {"handler"}}},
      {"regmeter_http_request_duration_seconds", {"histogram", {"handler", "method"}}},
      {"regmeter_upstream_header_seconds", {"histogram", {"handler", "method"}}},
      {"regmeter_upstream_connect_seconds", {"histogram", {}}},
      {"regmeter_upstream_queue_seconds", {"histogram", {}}},
      {"regmeter_blob_throughput_bytes_per_second", {"histogram", {"direction"}}},
      {"regmeter_upload_session_duration_seconds", {"histogram", {"outcome"}}},
      {"regmeter_upload_session_size_bytes", {"histogram", {"outcome"}}},
      {"regmeter_image_pull_duration_seconds", {"histogram", {"outcome"}}},
      {"regmeter_image_pull_size_bytes", {"histogram", {"outcome"}}},
      {"regmeter_auth_challenges_total", {"counter", {"handler"}}},
      {"regmeter_rejected_connections_total", {"counter", {"reason"}}},
      {"regmeter_image_pushes_total", {"counter", {"repository"}}},
      {"regmeter_image_pulls_total", {"counter", {"repository"}}},
      {"regmeter_blob_redirects_total", {"counter", {"repository"}}},
      {"regmeter_blob_bytes_total", {"counter", {"direction", "repository"}}},
      {"regmeter_registry_errors_total", {"counter", {"error", "handler", "method"}}},
      {"regmeter_client_requests_total", {"counter", {"client", "handler"}}},
      {"regmeter_client_errors_total", {"counter", {"client", "handler"}}},
      {"regmeter_tls_handshake_errors_total", {"counter", {"side"}}},
      {"regmeter_upstream_resolutions_total", {"counter", {"result"}}},
      {"regmeter_upstream_addresses", {"gauge", {}}},
      {"regmeter_upstream_connect_failures_total", {"counter", {}}},
      {"regmeter_upstream_connections", {"gauge", {"state"}}},
      {"regmeter_upstream_queue_depth", {"gauge", {}}},
      {"regmeter_upstream_ratelimit_limit", {"gauge", {}}},
      {"regmeter_upstream_ratelimit_remaining", {"gauge", {}}},
      {"regmeter_upstream_ratelimit_window_seconds", {"gauge", {}}},
  };
  return families;
}

std::string type_name(prometheus::MetricType type) {
  switch (type) {
    case prometheus::MetricType::Counter: return "counter";
    case prometheus::MetricType::Gauge: return "gauge";
    case prometheus::MetricType::Histogram: return "histogram";
    default: return "other";
  }
}

TEST(MetricFamilies, TheDeclarationsAreTheFamiliesOfToday) {
  std::set<std::string> declared;
  for (const auto* d : kAllFamilies) {
    std::string name(d->name);
    EXPECT_TRUE(declared.insert(name).second) << "declared twice: " << name;
    auto it = expected_families().find(name);
    if (it == expected_families().end()) {
      ADD_FAILURE() << "declared but not expected: " << name;
      continue;
    }
    EXPECT_EQ(type_name(d->type), it->second.type) << name;
    std::vector<std::string> labels(d->labels.begin(), d->labels.end());
    EXPECT_EQ(labels, it->second.labels) << name;
    EXPECT_FALSE(d->help.empty()) << name;
    EXPECT_EQ(d->bounds.empty(), d->type != prometheus::MetricType::Histogram) << name;
  }
  for (const auto& [name, expected] : expected_families()) EXPECT_TRUE(declared.count(name)) << "not declared: " << name;
}

// distribution's help strings, which drop-in dashboards show; they must not
// drift from its Go exporter's.
TEST(MetricFamilies, RegistryHttpHelpIsDistributions) {
  EXPECT_EQ(families::kInFlight.help, "The in-flight HTTP requests");
  EXPECT_EQ(families::kRequests.help, "Total number of HTTP requests made.");
  EXPECT_EQ(families::kRequestDuration.help, "The HTTP request latencies in seconds.");
  EXPECT_EQ(families::kRequestSize.help, "The HTTP request sizes in bytes.");
  EXPECT_EQ(families::kResponseSize.help, "The HTTP response sizes in bytes.");
}

// A registry and a Metrics with a series in every family.
struct Populated {
  Metrics metrics{2, MetricsOptions{}};
  ProcessCounters counters{metrics.registry()};
  Config config;
  SharedMetering metering{config, metrics.registry()};

  Populated() {
    auto& shard = metrics.shard(0);
    auto push = answered_exchange(Handler::manifest, Method::put, 201);
    push.repository = "library/alpine";
    push.upstream_headers = push.finished;
    push.needed_upstream_connection = true;
    record(shard, push);
    auto pull = answered_exchange(Handler::manifest, Method::get, 200);
    pull.repository = "library/alpine";
    record(shard, pull);
    auto upload = answered_exchange(Handler::blob_upload_chunk, Method::patch, 202, std::chrono::seconds(1));
    upload.repository = "library/alpine";
    upload.request_body_bytes = 4 << 20;
    upload.request_body_start = upload.started;
    upload.request_body_end = upload.finished;
    record(shard, upload);
    auto download = answered_exchange(Handler::blob, Method::get, 200, std::chrono::seconds(1));
    download.repository = "library/alpine";
    download.response_body_bytes = 4 << 20;
    download.response_body_start = download.started;
    record(shard, download);
    auto redirect = answered_exchange(Handler::blob, Method::get, 307);
    redirect.repository = "library/alpine";
    record(shard, redirect);
    auto challenge = answered_exchange(Handler::base, Method::get, 401);
    record(shard, challenge);
    auto failure = answered_exchange(Handler::manifest, Method::get, 404);
    failure.error = RegistryError::manifest_unknown;
    record(shard, failure);
    shard.upstream_connected(std::chrono::milliseconds(2));
    shard.upload_session_closed(SessionOutcome::completed, 3.0, 4 << 20);
    shard.connection_rejected(RejectReason::not_http);
    EndedPull ended;
    ended.outcome = PullOutcome::complete;
    ended.seconds = 2;
    ended.bytes = 4 << 20;
    shard.image_pull_ended(ended);
    metering.rate_limit_seen(RateLimit{100, 99, 3600});
  }
};

struct Rendered {
  std::string help;
  std::string type;
  std::set<std::vector<std::string>> label_sets;  // label names of each sample, `le` left out
};

// Label names of a sample line: `name{a="x",b="y"} 1` -> {a, b}.
std::vector<std::string> label_names(const std::string& line) {
  std::vector<std::string> names;
  auto open = line.find('{');
  auto space = line.find(' ');
  if (open == std::string::npos || open > space) return names;
  std::size_t i = open + 1;
  while (i < line.size() && line[i] != '}') {
    auto eq = line.find('=', i);
    std::string name = line.substr(i, eq - i);
    if (name != "le") names.push_back(name);
    i = eq + 2;  // past ="
    while (i < line.size() && line[i] != '"') i += line[i] == '\\' ? 2 : 1;
    i += 1;  // past the closing quote
    if (i < line.size() && line[i] == ',') ++i;
  }
  return names;
}

std::map<std::string, Rendered> parse_text(const std::string& text) {
  std::map<std::string, Rendered> out;
  std::string current;
  for (const auto& line : lines_of(text)) {
    if (line.rfind("# HELP ", 0) == 0) {
      auto rest = line.substr(7);
      current = rest.substr(0, rest.find(' '));
      out[current].help = rest.substr(current.size() + 1);
    } else if (line.rfind("# TYPE ", 0) == 0) {
      auto rest = line.substr(7);
      out[rest.substr(0, rest.find(' '))].type = rest.substr(rest.find(' ') + 1);
    } else if (!line.empty() && line[0] != '#') {
      out[current].label_sets.insert(label_names(line));
    }
  }
  return out;
}

TEST(MetricFamilies, EveryFamilyRendersAsDeclared) {
  Populated p;
  auto rendered = parse_text(p.metrics.render_text());
  for (const auto& [name, expected] : expected_families()) {
    auto it = rendered.find(name);
    if (it == rendered.end()) {
      ADD_FAILURE() << "not in the exposition: " << name;
      continue;
    }
    EXPECT_EQ(it->second.type, expected.type) << name;
    EXPECT_EQ(it->second.label_sets, (std::set<std::vector<std::string>>{expected.labels})) << name;
  }
  for (const auto* d : kAllFamilies) {
    auto it = rendered.find(std::string(d->name));
    if (it != rendered.end()) {
      EXPECT_EQ(it->second.help, d->help) << d->name;
    }
  }
  for (const auto& [name, r] : rendered) EXPECT_TRUE(expected_families().count(name)) << "not expected: " << name;
}

TEST(MetricFamilies, HistogramBoundsAreTheDeclaredOnes) {
  Populated p;
  std::vector<std::string> le;
  for (const auto& line : lines_of(p.metrics.render_text()))
    if (line.rfind(R"(registry_http_request_duration_seconds_bucket{handler="base",method="get",le=")", 0) == 0)
      le.push_back(line.substr(line.find("le=\"") + 4, line.find("\"}") - line.find("le=\"") - 4));
  // docker/go-metrics' defaults, as distribution writes them.
  EXPECT_EQ(le, (std::vector<std::string>{"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5",
                                          "10", "25", "60", "+Inf"}));
}

}  // namespace
}  // namespace regmeter
