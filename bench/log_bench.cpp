// A warning that repeats (the registry is down: one per request) must cost a
// request next to nothing once it is only being counted: formatted into a
// stack buffer, hashed, one atomic increment; no lock, no allocation.
#include "core/log.h"
#include "core/log_limit.h"

#include <benchmark/benchmark.h>

#include <string>

namespace {

// The whole call as exchange.cpp makes it, after the first line was written.
void BM_LogWarnLimited_Counted(benchmark::State& state) {
  const std::string upstream = "registry.internal:5000";
  const std::string what = "connect: Connection refused";
  for (auto _ : state) regmeter::log_warn_limited("upstream {}: {}", upstream, what);
}
BENCHMARK(BM_LogWarnLimited_Counted)->Threads(1)->Threads(2);

// The limiter alone, on a text already formatted.
void BM_RepeatLimiter_Counted(benchmark::State& state) {
  static regmeter::RepeatLimiter limiter(60'000'000'000);
  const std::string text = "upstream registry.internal:5000: connect: Connection refused";
  std::int64_t now = 0;
  for (auto _ : state) benchmark::DoNotOptimize(limiter.admit(text, ++now));
}
BENCHMARK(BM_RepeatLimiter_Counted)->Threads(1)->Threads(2);

}  // namespace
