// Scrape cost of the protobuf and OpenMetrics writers: 1000 series of a
// duration histogram (13 classic buckets with an exemplar each, plus native
// buckets), and 1000 counter series with exemplars.
#include <benchmark/benchmark.h>

#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/exposition.h"
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
