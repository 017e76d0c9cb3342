// What recording a native observation costs on the request path, next to the
// classic bucket search it sits beside.
#include <benchmark/benchmark.h>

#include <array>
#include <cstdint>
#include <random>
#include <vector>

#include "core/native_histogram.h"

namespace {

using regmeter::NativeHistogram;

// Request durations in seconds: log-normal around 20 ms, from whole
// nanoseconds as the proxy measures them. A power-of-two count so that the
// benchmark loop indexes with a mask.
std::vector<double> durations() {
  std::mt19937_64 random(1);
  std::lognormal_distribution<double> seconds(-4.0, 1.5);
  std::vector<double> out(4096);
  for (auto& v : out) v = static_cast<double>(static_cast<std::int64_t>(seconds(random) * 1e9)) / 1e9;
  return out;
}

void BM_NativeObserve(benchmark::State& state) {
  auto values = durations();
  NativeHistogram h;
  for (double v : values) h.observe(v);  // the window is grown: steady state
  std::size_t i = 0;
  for (auto _ : state) {
    h.observe(values[i++ & (values.size() - 1)]);
  }
  benchmark::DoNotOptimize(h.count());
  state.counters["schema"] = h.schema();
  state.counters["window"] = static_cast<double>(h.window_size());
}
BENCHMARK(BM_NativeObserve);

void BM_NativeBucketIndex(benchmark::State& state) {
  auto values = durations();
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(regmeter::native_bucket_index(values[i++ & (values.size() - 1)], 3));
  }
}
BENCHMARK(BM_NativeBucketIndex);

// For scale: distribution's 13 classic duration buckets, searched linearly as
// src/core/metrics.cpp does, plus the count.
void BM_ClassicObserve(benchmark::State& state) {
  constexpr std::array<double, 13> bounds = {.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 25, 60};
  auto values = durations();
  std::array<std::uint64_t, 14> counts{};
  double sum = 0;
  std::size_t i = 0;
  for (auto _ : state) {
    double v = values[i++ & (values.size() - 1)];
    std::size_t b = 0;
    while (b < bounds.size() && v > bounds[b]) ++b;
    ++counts[b];
    sum += v;
  }
  benchmark::DoNotOptimize(counts);
  benchmark::DoNotOptimize(sum);
}
BENCHMARK(BM_ClassicObserve);

void BM_NativeMergeShards(benchmark::State& state) {
  auto values = durations();
  NativeHistogram a, b;
  for (std::size_t i = 0; i < values.size(); ++i) (i % 2 ? a : b).observe(values[i]);
  for (auto _ : state) {
    NativeHistogram merged = a;
    merged.merge(b);
    benchmark::DoNotOptimize(merged.count());
  }
}
BENCHMARK(BM_NativeMergeShards);

}  // namespace
