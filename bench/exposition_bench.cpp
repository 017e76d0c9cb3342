// Scrape cost of the protobuf and OpenMetrics writers: 1000 series of a
// duration histogram (13 classic buckets with an exemplar each, plus native
// buckets), and 1000 counter series with exemplars; and of a whole /metrics
// scrape (BM_Scrape: Metrics::render in each format) with thousands of series.
#include <benchmark/benchmark.h>

#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "core/exposition.h"
#include "core/exposition_format.h"
#include "core/metrics.h"
#include "core/native_histogram.h"
#include "core/openmetrics_writer.h"
#include "core/protobuf_writer.h"

namespace {

using namespace regmeter;

constexpr std::size_t kSeries = 1000;
constexpr std::array<double, 13> kBounds = {.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 25, 60};

// Owns everything the views point into.
struct Fixture {
  std::vector<std::string> names;
  std::vector<std::array<LabelView, 2>> labels;
  std::vector<NativeHistogram> histograms;
  std::vector<NativeBucketsView> natives;
  std::vector<std::array<Exemplar, kBounds.size()>> exemplars;
  std::vector<std::array<ClassicBucketView, kBounds.size()>> buckets;
  std::vector<SeriesView> histogram_series;
  std::vector<SeriesView> counter_series;
  std::vector<Exemplar> counter_exemplars;
  std::array<FamilyView, 1> histogram_family;
  std::array<FamilyView, 1> counter_family;

  Fixture() {
    std::mt19937_64 random(5);
    std::lognormal_distribution<double> seconds(-4.0, 1.5);
    names.reserve(kSeries);
    for (std::size_t i = 0; i < kSeries; ++i) names.push_back("repository/number-" + std::to_string(i));
    labels.resize(kSeries);
    histograms.resize(kSeries);
    natives.resize(kSeries);
    exemplars.resize(kSeries);
    buckets.resize(kSeries);
    histogram_series.resize(kSeries);
    counter_series.resize(kSeries);
    counter_exemplars.resize(kSeries);
    RequestIdGenerator ids(0x1234567890abcdef, 0);
    TraceId trace;
    trace.bytes.fill(0xab);
    for (std::size_t i = 0; i < kSeries; ++i) {
      labels[i] = {LabelView{"method", "get"}, LabelView{"repository", names[i]}};
      std::array<std::uint64_t, kBounds.size()> counts{};
      double sum = 0;
      for (int n = 0; n < 500; ++n) {
        double v = seconds(random);
        histograms[i].observe(v);
        sum += v;
        std::size_t b = 0;
        while (b < kBounds.size() && v > kBounds[b]) ++b;
        if (b < kBounds.size()) {
          ++counts[b];
          exemplars[i][b] = Exemplar{ids.next(), trace, v, 1712345678'123456789};
        }
      }
      std::uint64_t cumulative = 0;
      for (std::size_t b = 0; b < kBounds.size(); ++b) {
        cumulative += counts[b];
        buckets[i][b] = ClassicBucketView{kBounds[b], cumulative, &exemplars[i][b]};
      }
      natives[i] = histograms[i].view();
      histogram_series[i].labels = labels[i];
      histogram_series[i].histogram = HistogramView{histograms[i].count(), sum, buckets[i], &natives[i]};
      counter_exemplars[i] = Exemplar{ids.next(), trace, 1, 1712345678'123456789};
      counter_series[i].labels = labels[i];
      counter_series[i].value = static_cast<double>(histograms[i].count());
      counter_series[i].exemplar = &counter_exemplars[i];
    }
    histogram_family[0] = FamilyView{"regmeter_http_request_duration_seconds", "The HTTP request latencies in seconds.",
                                     "seconds", FamilyType::histogram, histogram_series};
    counter_family[0] =
        FamilyView{"regmeter_requests_total", "Requests.", "", FamilyType::counter, counter_series};
  }
};

const Fixture& fixture() {
  static const Fixture f;
  return f;
}

template <void (*Write)(std::span<const FamilyView>, std::string&)>
void run(benchmark::State& state, std::span<const FamilyView> families) {
  std::string out;
  for (auto _ : state) {
    out.clear();
    Write(families, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["bytes"] = static_cast<double>(out.size());
}

void BM_Protobuf1000Histograms(benchmark::State& state) { run<append_protobuf>(state, fixture().histogram_family); }
void BM_OpenMetrics1000Histograms(benchmark::State& state) {
  run<append_openmetrics>(state, fixture().histogram_family);
}
void BM_Protobuf1000Counters(benchmark::State& state) { run<append_protobuf>(state, fixture().counter_family); }
void BM_OpenMetrics1000Counters(benchmark::State& state) { run<append_openmetrics>(state, fixture().counter_family); }
BENCHMARK(BM_Protobuf1000Histograms)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_OpenMetrics1000Histograms)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Protobuf1000Counters)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_OpenMetrics1000Counters)->Unit(benchmark::kMicrosecond);

}  // namespace

// ---- a whole /metrics scrape through Metrics, with thousands of series

namespace scrape {

using namespace regmeter;
using namespace std::chrono_literals;

// Four shards, every handler x method with four codes, and `repositories`
// distinct repositories pushed to and pulled from (four series each):
// 288 request counters, 72 x 4 histograms and 4 x repositories counters.
// Every request has an id, so every bucket and counter carries an exemplar.
struct Populated {
  explicit Populated(std::size_t repositories) : metrics(4, MetricsOptions{repositories}) {
    std::uint64_t n = 0;
    auto record = [&](std::size_t shard, Handler h, Method m, int status, std::string_view repository,
                      std::uint64_t in, std::uint64_t out, std::chrono::nanoseconds d) {
      Exchange e;
      e.handler = h;
      e.method = m;
      e.status = status;
      e.request_body_bytes = in;
      e.response_body_bytes = out;
      e.started = Clock::time_point{} + 1h;
      e.finished = e.started + d;
      e.upstream_headers = e.started + d / 2;
      e.repository = repository;
      e.request_id = RequestId{0x5eed, ++n};
      e.finished_unix_ns = 1'764'000'000'000'000'000 + static_cast<std::int64_t>(n);
      metrics.shard(shard).request_started(h);
      metrics.shard(shard).request_finished(e);
    };
    for (std::size_t s = 0; s < metrics.shard_count(); ++s)
      for (std::size_t h = 0; h < kHandlerCount; ++h)
        for (std::size_t m = 0; m < kMethodCount; ++m)
          for (int status : {200, 201, 202, 404})
            record(s, static_cast<Handler>(h), static_cast<Method>(m), status, {}, 4096, 65536,
                   std::chrono::microseconds(100 + 977 * (h * kMethodCount + m) + 13 * s));
    for (std::size_t r = 0; r < repositories; ++r) {
      std::string name = "team" + std::to_string(r % 37) + "/app" + std::to_string(r);
      std::size_t s = r % metrics.shard_count();
      record(s, Handler::manifest, Method::put, 201, name, 1500, 0, 20ms);
      record(s, Handler::manifest, Method::get, 200, name, 0, 1500, 3ms);
      record(s, Handler::blob_upload_chunk, Method::put, 201, name, 30'000'000, 0, 900ms);
      record(s, Handler::blob, Method::get, 200, name, 0, 30'000'000, 400ms);
    }
  }
  Metrics metrics;
};

constexpr std::size_t kRepositories = 2000;

void BM_Scrape(benchmark::State& state) {
  static Populated populated(kRepositories);  // built once, for the three formats
  auto format = static_cast<ExpositionFormat>(state.range(0));
  std::size_t bytes = 0, series = 0;
  for (auto _ : state) {
    auto out = populated.metrics.render(format);
    bytes = out.size();
    benchmark::DoNotOptimize(out);
  }
  // Series, counted in the text format: one per line that is not a comment
  // and not a histogram's _bucket/_sum (a histogram counts once, by _count).
  auto text = populated.metrics.render(ExpositionFormat::text);
  for (std::size_t pos = 0; pos < text.size();) {
    auto end = text.find('\n', pos);
    std::string_view line(text.data() + pos, (end == std::string::npos ? text.size() : end) - pos);
    pos = end == std::string::npos ? text.size() : end + 1;
    if (line.empty() || line[0] == '#') continue;
    auto name = line.substr(0, line.find_first_of("{ "));
    if (name.ends_with("_bucket") || name.ends_with("_sum")) continue;
    ++series;
  }
  state.counters["bytes"] = static_cast<double>(bytes);
  state.counters["series"] = static_cast<double>(series);
  state.SetLabel(std::string(format_name(format)));
}
// The argument: 0 text, 1 OpenMetrics, 2 protobuf.
BENCHMARK(BM_Scrape)->Arg(0)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond);

}  // namespace scrape
