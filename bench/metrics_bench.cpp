// The per-request metrics cost: what a worker pays once per exchange, and
// what a scrape costs the loop that serves /metrics.
#include <benchmark/benchmark.h>

#include <array>
#include <string_view>

#include <prometheus/metric_family.h>

#include "core/dashboard_readings.h"
#include "core/metric_history.h"
#include "core/metrics.h"
#include "core/route.h"
// issue 16's per-request additions (BM_ClassifyAndRecordWithMetering)
#include "core/client_family.h"
#include "core/http_head.h"
#include "core/response_meter.h"

namespace {

using namespace regmeter;
using namespace std::chrono_literals;

struct Request {
  Method method;
  std::string_view target;
  int status;
  std::chrono::nanoseconds duration;
  std::uint64_t request_bytes;
  std::uint64_t response_bytes;
};

// A pull, then a push through the upload endpoints, as clients send them.
constexpr std::array<Request, 6> kRequests = {{
    {Method::head, "/v2/library/nginx/manifests/1.25-alpine", 200, 3ms, 0, 0},
    {Method::get,
     "/v2/library/nginx/manifests/sha256:0b0ac4ab7ae5d2bbb8e01b9dcbfa8f2a1e3ef4bbaf8d7b0c50b1ccf5e1e5c4a2", 200, 4ms,
     0, 1570},
    {Method::get, "/v2/library/nginx/blobs/sha256:a5b16d1d9b4ab6d1bbcd6b3e1e1a1f3c1f7d0a93c8e6a1b2c3d4e5f6a7b8c9d0",
     200, 850ms, 0, 29'150'000},
    {Method::post, "/v2/team/app/blobs/uploads/", 202, 6ms, 0, 0},
    {Method::patch,
     "/v2/team/app/blobs/uploads/3f1c2a9e-5b7d-4c8e-9f0a-1b2c3d4e5f60?_state=qOjWCkxjJ0tWlGNwYHmYwrKVUtOYM9sJQ1zJ1a5oGJ17"
     "Ik5hbWUiOiJ0ZWFtL2FwcCIsIlVVSUQiOiIzZjFjMmE5ZSJ9",
     202, 2400ms, 52'000'000, 0},
    {Method::put,
     "/v2/team/app/blobs/uploads/3f1c2a9e-5b7d-4c8e-9f0a-1b2c3d4e5f60?_state=qOjWCkxjJ0tWlGNwYHmYwrKVUtOYM9sJQ1zJ1a5oGJ17"
     "Ik5hbWUiOiJ0ZWFtL2FwcCIsIlVVSUQiOiIzZjFjMmE5ZSJ9&digest=sha256:"
     "a5b16d1d9b4ab6d1bbcd6b3e1e1a1f3c1f7d0a93c8e6a1b2c3d4e5f6a7b8c9d0",
     201, 40ms, 0, 0},
}};

// Every time point the data path fills, so the regmeter_* families (upstream
// header time, throughput, per-repository counters) are recorded as well.
Exchange exchange_for(const Request& r, Handler handler, std::string_view repository = {}) {
  Exchange e;
  e.handler = handler;
  e.method = r.method;
  e.status = r.status;
  e.request_body_bytes = r.request_bytes;
  e.response_body_bytes = r.response_bytes;
  e.started = Clock::time_point{} + 1h;
  e.finished = e.started + r.duration;
  e.reached_upstream = true;
  e.repository = repository;
  e.request_body_start = e.started + 100us;
  e.request_body_end = r.request_bytes != 0 ? e.finished - 1ms : e.request_body_start;
  e.upstream_headers = e.request_body_end + 500us;
  e.response_body_start = e.upstream_headers + 10us;
  // As on the data path: every request has an id, so exemplars are written.
  e.request_id = RequestId{0x5eed, 1};
  e.finished_unix_ns = 1'764'000'000'000'000'000;
  return e;
}

void BM_ClassifyAndRecord(benchmark::State& state) {
  Metrics metrics(1);
  auto& shard = metrics.shard(0);
  std::size_t i = 0;
  for (auto _ : state) {
    const auto& r = kRequests[i++ % kRequests.size()];
    auto route = classify(r.method, r.target);
    shard.request_started(route.handler);
    shard.request_finished(exchange_for(r, route.handler, route.repository));
    benchmark::DoNotOptimize(route);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ClassifyAndRecord);

// The same with everything issue 16 adds per request: the User-Agent's
// family, the rate-limit headers of the response head (here Docker Hub's
// pair among distribution's usual fields, on every answer), and for one
// request in seven a 404 whose error body is read for its code.
MessageHead response_head(int status, std::size_t length) {
  MessageHead head;
  head.status = status;
  head.content_length = length;
  head.headers = {{"Content-Type", "application/json; charset=utf-8"},
                  {"Docker-Distribution-Api-Version", "registry/2.0"},
                  {"Docker-Content-Digest", "sha256:0b0ac4ab7ae5d2bbb8e01b9dcbfa8f2a1e3ef4bbaf8d7b0c50b1ccf5e1e5c4a2"},
                  {"Etag", "\"sha256:0b0ac4ab7ae5d2bbb8e01b9dcbfa8f2a1e3ef4bbaf8d7b0c50b1ccf5e1e5c4a2\""},
                  {"X-Content-Type-Options", "nosniff"},
                  {"RateLimit-Limit", "100;w=21600"},
                  {"RateLimit-Remaining", "76;w=21600"},
                  {"Date", "Wed, 02 Dec 2026 07:00:00 GMT"},
                  {"Content-Length", std::to_string(length)}};
  return head;
}

void BM_ClassifyAndRecordWithMetering(benchmark::State& state) {
  Metrics metrics(1);
  auto& shard = metrics.shard(0);
  const std::string_view error_body =
      R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":"unknown tag=1.26"}]})" "\n";
  const MessageHead ok = response_head(200, 1570);
  const MessageHead missing = response_head(404, error_body.size());
  const Request not_found{Method::get, "/v2/library/nginx/manifests/1.26", 404, 2ms, 0, error_body.size()};
  const std::array<std::string_view, 3> agents = {
      "containerd/v2.1.4", "docker/27.5.1 go/go1.22.12 git-commit/4c9b3b0 kernel/6.1.0 os/linux arch/amd64 "
      "UpstreamClient(Docker-Client/27.5.1 \\(linux\\))", "skopeo/1.9.3"};
  ResponseMeter meter;
  std::size_t i = 0;
  for (auto _ : state) {
    bool error = i % 7 == 6;
    const auto& r = error ? not_found : kRequests[i % kRequests.size()];
    auto route = classify(r.method, r.target);
    auto client = classify_user_agent(agents[i % agents.size()]);
    ++i;
    shard.request_started(route.handler);
    const MessageHead& head = error ? missing : ok;
    auto budget = rate_limit_of(head);
    meter.begin(route.handler, r.method, head);
    if (error) meter.payload(error_body);
    meter.complete();
    auto e = exchange_for(r, route.handler, route.repository);
    e.client = client;
    e.error = meter.error();
    shard.request_finished(e);
    benchmark::DoNotOptimize(budget);
    benchmark::DoNotOptimize(route);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ClassifyAndRecordWithMetering);

// The per-repository families once the repository table is full: names past
// the bound (here every other request) are `__other__` without any lookup in
// the process-wide table.
void BM_RecordPastRepositoryBound(benchmark::State& state) {
  Metrics metrics(1, MetricsOptions{.max_repositories = 1});
  auto& shard = metrics.shard(0);
  const Request& pull = kRequests[2];  // a blob GET: counts download bytes per repository
  auto handler = classify(pull.method, pull.target).handler;
  const std::array<std::string_view, 2> names = {"library/nginx", "team/app"};
  std::size_t i = 0;
  for (auto _ : state) {
    shard.request_started(handler);
    shard.request_finished(exchange_for(pull, handler, names[i++ % names.size()]));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RecordPastRepositoryBound);

void BM_Record(benchmark::State& state) {
  Metrics metrics(1);
  auto& shard = metrics.shard(0);
  std::array<Exchange, kRequests.size()> exchanges;
  for (std::size_t k = 0; k < kRequests.size(); ++k)
    exchanges[k] = exchange_for(kRequests[k], classify(kRequests[k].method, kRequests[k].target).handler,
                                kRequests[k].method == Method::get ? "library/nginx" : "team/app");
  std::size_t i = 0;
  for (auto _ : state) {
    const auto& e = exchanges[i++ % exchanges.size()];
    shard.request_started(e.handler);
    shard.request_finished(e);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Record);

// A scrape with every handler/method combination populated in each of four
// shards: the pause it puts on the loop serving /metrics.
void populate_every_series(Metrics& metrics) {
  for (std::size_t s = 0; s < metrics.shard_count(); ++s)
    for (std::size_t h = 0; h < kHandlerCount; ++h)
      for (std::size_t m = 0; m < kMethodCount; ++m)
        for (int status : {200, 201, 202, 404}) {
          Request r{static_cast<Method>(m), "", status, 7ms, 4096, 65536};
          metrics.shard(s).request_started(static_cast<Handler>(h));
          metrics.shard(s).request_finished(exchange_for(r, static_cast<Handler>(h)));
        }
}

void BM_RenderText(benchmark::State& state) {
  Metrics metrics(4);
  populate_every_series(metrics);
  std::size_t bytes = 0;
  for (auto _ : state) {
    auto text = metrics.render_text();
    bytes = text.size();
    benchmark::DoNotOptimize(text);
  }
  state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_RenderText)->Unit(benchmark::kMicrosecond);

// One /dashboard history sample on the same metrics: the pause the history
// timer puts on worker 0's loop every --dashboard-history-interval.
void BM_DashboardHistorySample(benchmark::State& state) {
  Metrics metrics(4);
  populate_every_series(metrics);
  MetricHistory history(720, 128);
  std::int64_t t = 0;
  for (auto _ : state) history.record(t += 5000, dashboard_readings(metrics.collect_http_families()));
  state.counters["series"] = static_cast<double>(history.columns().size());
}
BENCHMARK(BM_DashboardHistorySample)->Unit(benchmark::kMicrosecond);

}  // namespace
