// Records exchanges into shards and asserts on the rendered exposition text.
#include "regmeter/metrics.h"

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
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace regmeter {
namespace {

using namespace std::chrono_literals;

Exchange exchange(Handler handler, Method method, int status, std::chrono::nanoseconds duration = 1ms,
                  std::uint64_t request_bytes = 0, std::uint64_t response_bytes = 0) {
  Exchange e;
  e.handler = handler;
  e.method = method;
  e.status = status;
  e.request_body_bytes = request_bytes;
  e.response_body_bytes = response_bytes;
  e.started = Clock::time_point{} + 1h;
  e.finished = e.started + duration;
  e.reached_upstream = true;
  return e;
}

void record(MetricsShard& shard, const Exchange& e) {
  shard.request_started(e.handler);
  shard.request_finished(e);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

bool has_line(const std::string& text, const std::string& line) {
  for (const auto& l : lines_of(text))
    if (l == line) return true;
  return false;
}

// The lines that start with `prefix`, in order.
std::vector<std::string> lines_starting(const std::string& text, const std::string& prefix) {
  std::vector<std::string> out;
  for (const auto& l : lines_of(text))
    if (l.rfind(prefix, 0) == 0) out.push_back(l);
  return out;
}

#define EXPECT_LINE(text, line) EXPECT_TRUE(has_line(text, line)) << "missing: " << (line) << "\nin:\n" << (text)

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

TEST(Metrics, PromtoolAcceptsTheExposition) {
  auto promtool = find_on_path("promtool");
  if (promtool.empty()) GTEST_SKIP() << "promtool not on PATH";

  Metrics metrics(2);
  record(metrics.shard(0), exchange(Handler::manifest, Method::put, 201, 12ms, 1500, 0));
  record(metrics.shard(1), exchange(Handler::blob, Method::get, 307, 2ms, 0, 0));
  record(metrics.shard(1), exchange(Handler::blob_upload_chunk, Method::patch, 0, 2s, 3 << 20, 0));
  record(metrics.shard(0), exchange(Handler::other, Method::other, 404, 1ms, 0, 19));
  auto file = std::filesystem::temp_directory_path() / ("regmeter-metrics-" + std::to_string(::getpid()) + ".txt");
  std::ofstream(file) << metrics.render_text();

  auto command = promtool + " check metrics < " + file.string() + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buf[512];
  while (auto n = std::fread(buf, 1, sizeof buf, pipe)) output.append(buf, n);
  int status = ::pclose(pipe);
  std::filesystem::remove(file);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << output;
  EXPECT_EQ(output, "");
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

}  // namespace
}  // namespace regmeter
