// Prometheus native (sparse, exponential) histograms: storage and merge.
//
// Bucket k at schema s covers (2^((k-1)/2^s), 2^(k/2^s)], upper bound
// inclusive, as Prometheus defines it: at schema 3 a power of two is split
// into 8 buckets, each 2^(1/8) ≈ 1.0905 times wider than the previous one (a
// relative error under 4.5%). Bucket 0 ends at 1.0.
//
// Storage is a dense window of counts [first_index, first_index + size),
// grown on demand (a duration histogram needs a few dozen buckets). The
// window's width is capped (max_buckets): an observation that would widen it
// beyond the cap halves the resolution first (schema - 1, each pair of
// buckets merged into one), as often as needed, down to schema -4. At schema
// -4 every double fits in 129 buckets, so memory stays bounded by
// max(max_buckets, 129) counts. The resolution never goes back up: counters
// are cumulative for the life of the process.
//
// Values at or below the zero threshold (0, negatives, -Inf) count in the
// zero bucket, as the classic histograms count them in their first bucket.
// NaN and +Inf count in `count` and `sum` but in no bucket (Prometheus reads
// count minus the buckets' total as such observations, the way client_golang
// exposes NaN): the count stays equal to a classic histogram's on the same
// series, and a stray +Inf cannot collapse the window to schema -4.
//
// Not thread-safe: a histogram lives in one metrics shard and is touched only
// under that shard's mutex (recording thread and scrape).
#pragma once

#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

namespace regmeter {

inline constexpr int kNativeMaxSchema = 3;   // the finest schema we record at
inline constexpr int kNativeMinSchema = -4;  // the coarsest Prometheus knows
// client_golang's default: 2^-128, a power of two and so a bucket boundary
// at every schema. Anything a duration or size can be (1 ns, 1 byte) is far
// above it, so only exact zeros land in the zero bucket.
inline constexpr double kDefaultZeroThreshold = 0x1p-128;
inline constexpr std::uint32_t kDefaultMaxNativeBuckets = 160;

struct NativeHistogramOptions {
  int schema = kNativeMaxSchema;  // initial resolution, clamped to [kNativeMinSchema, kNativeMaxSchema]
  // Values <= this count in the zero bucket. Must be >= DBL_MIN (the smallest
  // normal double; smaller values are raised to it) so that bucket indices
  // are computed from normal doubles only.
  double zero_threshold = kDefaultZeroThreshold;
  // Cap on the window width, empty buckets inside it included (that is the
  // memory). Exceeding it halves the resolution.
  std::uint32_t max_buckets = kDefaultMaxNativeBuckets;
};

// The buckets of one native histogram as the exposition writers take them.
// `counts` are per bucket (not cumulative): counts[i] belongs to bucket
// first_index + i. Zero counts inside are allowed (the writers turn gaps into
// spans); an empty `counts` is a histogram with no positive buckets.
struct NativeBucketsView {
  std::int32_t schema = kNativeMaxSchema;
  double zero_threshold = kDefaultZeroThreshold;
  std::uint64_t zero_count = 0;
  std::int32_t first_index = 0;
  std::span<const std::uint64_t> counts{};
};

// The index at schema - shift of the bucket that contains bucket `index`.
constexpr std::int32_t coarser_index(std::int32_t index, int shift) {
  // ceil(index / 2^shift); the right shift of a negative number floors (C++20).
  return static_cast<std::int32_t>((static_cast<std::int64_t>(index) + (std::int64_t{1} << shift) - 1) >> shift);
}

namespace native_detail {

// Mantissa bits (the 52 below the implicit 1) of the largest double <= 2^(j/8),
// j = 0..7: with them "v <= bound" in doubles is "v <= 2^(j/8)" in real
// numbers. Entry 8 is above every mantissa.
inline constexpr std::uint64_t kBoundMantissa[9] = {
    0x0000000000000, 0x172b83c7d517a, 0x306fe0a31b715, 0x4bfdad5362a27, 0x6a09e667f3bcc,
    0x8ace5422aa0db, 0xae89f995ad3ad, 0xd5818dcfba487, std::uint64_t{1} << 52,
};
// For each value p of the top 4 mantissa bits: how many bounds lie below
// p * 2^48. Consecutive bounds are more than 2^48 apart (the narrowest
// bucket, (1, 2^(1/8)], spans 0.09 of the mantissa range [1, 2), a sixteenth
// 0.0625), so at most one more bound falls inside: one comparison decides.
inline constexpr auto kBoundsBelowPrefix = [] {
  std::array<std::uint8_t, 16> out{};
  for (std::uint64_t p = 0; p < 16; ++p) {
    std::uint8_t below = 0;
    while (below < 8 && kBoundMantissa[below] < (p << 48)) ++below;
    out[p] = below;
  }
  return out;
}();

}  // namespace native_detail

// The bucket index of v at `schema` (kNativeMinSchema..kNativeMaxSchema), for
// a finite normal double v > 0. Exact: the result k satisfies
// 2^((k-1)/2^s) < v <= 2^(k/2^s) in real arithmetic. Computed from the
// exponent and the top 4 mantissa bits with one comparison, no search.
inline std::int32_t native_bucket_index(double v, int schema) {
  auto bits = std::bit_cast<std::uint64_t>(v);
  auto exponent = static_cast<std::int32_t>(bits >> 52) - 1023;  // v > 0: no sign bit
  std::uint64_t mantissa = bits & ((std::uint64_t{1} << 52) - 1);
  std::uint32_t within = native_detail::kBoundsBelowPrefix[mantissa >> 48];
  within += mantissa > native_detail::kBoundMantissa[within];
  std::int32_t index = exponent * 8 + static_cast<std::int32_t>(within);  // at schema 3
  return coarser_index(index, kNativeMaxSchema - schema);
}

class NativeHistogram {
 public:
  explicit NativeHistogram(const NativeHistogramOptions& options = {});

  // The hot path: a few ns when the bucket is inside the window.
  void observe(double value) {
    ++count_;
    sum_ += value;
    if (!(value > zero_threshold_)) {  // zero, negative, -Inf; NaN compares false too
      if (!std::isnan(value)) ++zero_count_;
      return;
    }
    if (value == std::numeric_limits<double>::infinity()) [[unlikely]] return;
    std::int32_t index = native_bucket_index(value, schema_);
    auto slot = static_cast<std::uint64_t>(static_cast<std::int64_t>(index) - first_index_);
    if (slot < counts_.size()) [[likely]] {
      ++counts_[slot];
    } else {
      add_outside_window(index, 1);
    }
  }

  // Adds `other` (a shard's copy) into this histogram. The result has the
  // coarser of the two schemas, or coarser still if the union of both windows
  // exceeds max_buckets. Both must have the same zero threshold (one per
  // family); a mismatch is a programming error and throws
  // std::invalid_argument.
  void merge(const NativeHistogram& other);

  std::uint64_t count() const { return count_; }
  double sum() const { return sum_; }
  int schema() const { return schema_; }
  double zero_threshold() const { return zero_threshold_; }
  std::uint64_t zero_count() const { return zero_count_; }
  std::uint32_t max_buckets() const { return max_buckets_; }
  // Count of bucket `index` at the current schema (0 outside the window).
  std::uint64_t bucket(std::int32_t index) const;
  // Width of the window currently allocated (memory, not populated buckets).
  std::size_t window_size() const { return counts_.size(); }

  // The populated part of the window (leading and trailing empty buckets
  // trimmed). Valid until the next observe or merge.
  NativeBucketsView view() const;

 private:
  void add_outside_window(std::int32_t index, std::uint64_t increment);
  // Halves the resolution `steps` times (schema -= steps), merging buckets.
  void reduce_resolution(int steps);
  // Reallocates the window to cover [low, high] (every populated bucket
  // lies inside), plus room to grow on the side given by `grow_low`.
  void rebuild_window(std::int64_t low, std::int64_t high, bool grow_low);

  int schema_;
  double zero_threshold_;
  std::uint32_t max_buckets_;
  std::uint64_t count_ = 0;
  double sum_ = 0;
  std::uint64_t zero_count_ = 0;
  std::int64_t first_index_ = 0;
  std::vector<std::uint64_t> counts_;
};

}  // namespace regmeter
