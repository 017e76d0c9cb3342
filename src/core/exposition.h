// The input of the exposition writers (protobuf_writer.h,
// openmetrics_writer.h): a format-free view of the metric families to expose,
// built by the scrape from the merged metrics snapshot.
//
// Everything here is a non-owning view (string_view, span, pointer): the
// snapshot the views point into must outlive the writer call. Families and
// series are written in the order given (sort them before: families by name,
// series by label values, as the text exposition does).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "core/exemplar.h"
#include "core/native_histogram.h"

namespace regmeter {

enum class FamilyType : std::uint8_t { counter, gauge, histogram };

struct LabelView {
  std::string_view name{};
  std::string_view value{};  // any bytes; the text writer escapes \, " and newline
};

// A classic bucket: upper bound (inclusive) and the count of observations
// <= it (cumulative). Bounds ascend. A last bucket with bound +Inf is
// optional: without one, the writers take `count` as its cumulative count.
struct ClassicBucketView {
  double upper_bound = 0;
  std::uint64_t cumulative_count = 0;
  const Exemplar* exemplar = nullptr;  // null or empty(): none
};

struct HistogramView {
  std::uint64_t count = 0;
  double sum = 0;
  std::span<const ClassicBucketView> buckets{};  // may be empty: a native-only histogram
  const NativeBucketsView* native = nullptr;   // null: classic only
};

struct SeriesView {
  std::span<const LabelView> labels{};   // without `le`; in the order to write them
  double value = 0;                    // counter and gauge
  const Exemplar* exemplar = nullptr;  // counter only; null or empty(): none
  HistogramView histogram{};           // histogram only
};

struct FamilyView {
  // As in the text format 0.0.4 and protobuf: a counter's name ends in
  // `_total` (the OpenMetrics writer strips it for its TYPE/HELP lines).
  std::string_view name{};
  std::string_view help{};
  // OpenMetrics `# UNIT` (e.g. "seconds"), written only when the family name
  // (without `_total`) ends in "_" + unit, as OpenMetrics requires; empty:
  // none. Not part of the protobuf exposition Prometheus 2.x reads.
  std::string_view unit{};
  FamilyType type = FamilyType::gauge;
  std::span<const SeriesView> series{};
};

}  // namespace regmeter
