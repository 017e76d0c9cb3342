#include "core/native_histogram.h"

#include <algorithm>
#include <cfloat>
#include <stdexcept>

namespace regmeter {
namespace {

// Extra buckets allocated beyond the one an observation needs, on the side
// the window grows: a latency distribution spreads over a few dozen buckets,
// so a handful of reallocations fills it.
constexpr std::int64_t kGrowthSlack = 8;

}  // namespace

NativeHistogram::NativeHistogram(const NativeHistogramOptions& options)
    : schema_(std::clamp(options.schema, kNativeMinSchema, kNativeMaxSchema)),
      zero_threshold_(std::max(options.zero_threshold, DBL_MIN)),
      max_buckets_(std::max<std::uint32_t>(options.max_buckets, 1)) {}

std::uint64_t NativeHistogram::bucket(std::int32_t index) const {
  auto slot = static_cast<std::uint64_t>(static_cast<std::int64_t>(index) - first_index_);
  return slot < counts_.size() ? counts_[slot] : 0;
}

NativeBucketsView NativeHistogram::view() const {
  NativeBucketsView out;
  out.schema = schema_;
  out.zero_threshold = zero_threshold_;
  out.zero_count = zero_count_;
  auto first = std::find_if(counts_.begin(), counts_.end(), [](std::uint64_t c) { return c != 0; });
  if (first == counts_.end()) return out;
  auto last = std::find_if(counts_.rbegin(), counts_.rend(), [](std::uint64_t c) { return c != 0; }).base();
  out.first_index = static_cast<std::int32_t>(first_index_ + (first - counts_.begin()));
  out.counts = std::span<const std::uint64_t>(&*first, static_cast<std::size_t>(last - first));
  return out;
}

void NativeHistogram::reduce_resolution(int steps) {
  if (steps <= 0) return;
  schema_ -= steps;
  if (counts_.empty()) return;
  std::int64_t last_index = first_index_ + static_cast<std::int64_t>(counts_.size()) - 1;
  std::int64_t new_first = coarser_index(static_cast<std::int32_t>(first_index_), steps);
  std::int64_t new_last = coarser_index(static_cast<std::int32_t>(last_index), steps);
  std::vector<std::uint64_t> merged(static_cast<std::size_t>(new_last - new_first + 1), 0);
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    auto index = static_cast<std::int32_t>(first_index_ + static_cast<std::int64_t>(i));
    merged[static_cast<std::size_t>(coarser_index(index, steps) - new_first)] += counts_[i];
  }
  counts_ = std::move(merged);
  first_index_ = new_first;
}

void NativeHistogram::rebuild_window(std::int64_t low, std::int64_t high, bool grow_low) {
  std::int64_t width = high - low + 1;
  std::int64_t slack = std::min<std::int64_t>(kGrowthSlack, std::int64_t{max_buckets_} - width);
  std::int64_t new_first = low;
  if (slack > 0) {
    if (counts_.empty()) {
      new_first -= slack / 2;  // first observation: room on both sides
    } else if (grow_low) {
      new_first -= slack;
    }
    width += slack;
  }
  std::vector<std::uint64_t> rebuilt(static_cast<std::size_t>(width), 0);
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    if (counts_[i] == 0) continue;  // only empty slack can fall outside [low, high]
    rebuilt[static_cast<std::size_t>(first_index_ + static_cast<std::int64_t>(i) - new_first)] = counts_[i];
  }
  counts_ = std::move(rebuilt);
  first_index_ = new_first;
}

void NativeHistogram::add_outside_window(std::int32_t index, std::uint64_t increment) {
  // The cap applies to the populated range, not to the slack allocated
  // around it, so that slack never costs resolution.
  std::int64_t low = index;
  std::int64_t high = index;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    if (counts_[i] == 0) continue;
    std::int64_t populated = first_index_ + static_cast<std::int64_t>(i);
    low = std::min(low, populated);
    high = std::max(high, populated);
  }
  int steps = 0;
  while (high - low + 1 > max_buckets_ && schema_ - steps > kNativeMinSchema) {
    ++steps;
    low = coarser_index(static_cast<std::int32_t>(low), 1);
    high = coarser_index(static_cast<std::int32_t>(high), 1);
  }
  reduce_resolution(steps);
  index = coarser_index(index, steps);
  auto slot = static_cast<std::uint64_t>(static_cast<std::int64_t>(index) - first_index_);
  if (slot >= counts_.size()) {
    rebuild_window(low, high, index < first_index_);
    slot = static_cast<std::uint64_t>(static_cast<std::int64_t>(index) - first_index_);
  }
  counts_[slot] += increment;
}

void NativeHistogram::merge(const NativeHistogram& other) {
  if (other.zero_threshold_ != zero_threshold_)
    throw std::invalid_argument("NativeHistogram::merge: different zero thresholds");
  count_ += other.count_;
  sum_ += other.sum_;
  zero_count_ += other.zero_count_;
  if (other.schema_ < schema_) reduce_resolution(schema_ - other.schema_);
  // Adding other's buckets one by one goes through the same window logic as
  // observations: a union wider than the cap halves the resolution.
  int shift = other.schema_ - schema_;
  for (std::size_t i = 0; i < other.counts_.size(); ++i) {
    if (other.counts_[i] == 0) continue;
    auto index = coarser_index(static_cast<std::int32_t>(other.first_index_ + static_cast<std::int64_t>(i)), shift);
    auto slot = static_cast<std::uint64_t>(static_cast<std::int64_t>(index) - first_index_);
    if (slot < counts_.size()) {
      counts_[slot] += other.counts_[i];
    } else {
      add_outside_window(index, other.counts_[i]);
    }
    shift = other.schema_ - schema_;  // add_outside_window may have reduced ours
  }
}

}  // namespace regmeter
