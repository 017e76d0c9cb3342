// The histogram every per-request family is made of: classic buckets (the
// text format's `_bucket` series), the most recent exemplar of each bucket,
// and native buckets (schema 3, capped; native_histogram.h), unless the
// family must stay classic only.
//
// Native buckets are the default, so a family added later carries them
// without asking. The registry_http_* families opt out (NativeBuckets::no):
// a Prometheus 2.x with native histograms on stores a histogram that has
// native buckets as native only, and the drop-in dashboards and alerts read
// registry_http_request_duration_seconds_bucket.
//
// Touched only under the owning shard's mutex, like everything in a shard.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "core/exemplar.h"
#include "core/native_histogram.h"

namespace regmeter {

// Who an observation belongs to, for its exemplar: filled once per request
// (no allocation), passed by pointer; null or an empty request id writes no
// exemplar (upstream connects, for instance, belong to no one request).
struct ExemplarSource {
  RequestId request_id;
  TraceId trace_id;
  std::int64_t unix_nanos = 0;  // wall clock of the observation
};

// Overwrites `slot` with this observation: the most recent one wins.
inline void record_exemplar(Exemplar& slot, const ExemplarSource* source, double value) {
  if (source == nullptr || source->request_id.empty() || source->unix_nanos == 0) return;
  slot = Exemplar{source->request_id, source->trace_id, value, source->unix_nanos};
}

// Merging shards: the more recent exemplar of the two.
inline void keep_latest(Exemplar& mine, const Exemplar& other) {
  if (other.unix_nanos > mine.unix_nanos) mine = other;
}

enum class NativeBuckets : bool { no, yes };

namespace histogram_detail {
struct NoNative {
  void observe(double) {}
  void merge(const NoNative&) {}
};
}  // namespace histogram_detail

// N classic bounds (the last bucket, index N, is +Inf). Integer observations
// (nanoseconds, bytes) keep sums exact; a ratio sums in double. Counts are
// per bucket, not cumulative.
template <std::size_t N, typename Sum = std::uint64_t, NativeBuckets Native = NativeBuckets::yes>
struct Buckets {
  static constexpr bool kNative = Native == NativeBuckets::yes;
  using NativePart = std::conditional_t<kNative, NativeHistogram, histogram_detail::NoNative>;

  std::array<std::uint64_t, N + 1> counts{};
  Sum sum = 0;
  std::array<Exemplar, N + 1> exemplars{};
  // Spelled out: NativeHistogram's default constructor is explicit.
  [[no_unique_address]] NativePart native = NativePart{};

  // `value` in recording units (ns, bytes), `exposed` in the exposition's
  // (seconds, bytes): native buckets and exemplars are in the latter.
  void observe(std::size_t bucket, Sum value, double exposed, const ExemplarSource* source = nullptr) {
    ++counts[bucket];
    sum += value;
    native.observe(exposed);
    record_exemplar(exemplars[bucket], source, exposed);
  }
  void add(const Buckets& other) {
    for (std::size_t i = 0; i < counts.size(); ++i) {
      counts[i] += other.counts[i];
      keep_latest(exemplars[i], other.exemplars[i]);
    }
    sum += other.sum;
    native.merge(other.native);
  }
  std::uint64_t count() const {
    std::uint64_t total = 0;
    for (auto c : counts) total += c;
    return total;
  }
  const NativeHistogram* native_or_null() const {
    if constexpr (kNative) return &native;
    return nullptr;
  }
};

}  // namespace regmeter
