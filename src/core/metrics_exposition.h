// From the merged metrics to the protobuf and OpenMetrics expositions.
//
// The scrape builds prometheus-cpp MetricFamily values (which the text
// format 0.0.4 is rendered from, unchanged) and, beside each series, what
// only the other two formats carry: exemplars and native buckets. This file
// turns both into exposition.h views and hands them to the writers.
#pragma once

#include <span>
#include <string>
#include <vector>

#include <prometheus/metric_family.h>

#include "core/exemplar.h"
#include "core/exposition_format.h"
#include "core/native_histogram.h"

namespace regmeter {

// Pointers into the merged snapshot, which must outlive the rendering.
struct SeriesExtras {
  const Exemplar* exemplar = nullptr;          // counter: the latest increment's request
  const Exemplar* bucket_exemplars = nullptr;  // histogram: one per classic bucket, +Inf last
  const NativeHistogram* native = nullptr;     // histogram with native buckets
};

struct CollectedFamily {
  prometheus::MetricFamily family;
  std::vector<SeriesExtras> extras;  // empty (none), or one per family.metric, aligned
};

// Orders series by label values (as Go's exporter does), extras along.
void sort_series(CollectedFamily& f);

// Appends `families` (sorted by name) in the protobuf or OpenMetrics
// exposition; `format` must not be text (that one is prometheus-cpp's).
void append_exposition(std::span<const CollectedFamily> families, ExpositionFormat format, std::string& out);

}  // namespace regmeter
