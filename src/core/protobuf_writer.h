// The Prometheus protobuf exposition: io.prometheus.client.MetricFamily
// messages (prometheus/client_model metrics.proto), each preceded by its
// length as a varint ("delimited"). A Prometheus started with
// --enable-feature=native-histograms asks for it first; it is the only
// exposition Prometheus 2.x reads native histograms from.
//
// A small encoder of our own, not libprotobuf: the schema is fixed and
// small, and writing straight into one string skips building message objects
// (docs/exposition-notes.md has the measurements). Written per the data
// model: proto2 field numbers, zigzag for sint32/sint64, packed deltas.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "core/exposition.h"

namespace regmeter {

inline constexpr std::string_view kProtobufContentType =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

// Appends every family, in order. What is written, per series:
// - counter: Counter.value, and Counter.exemplar when the series has one;
// - gauge: Gauge.value;
// - histogram: sample_count, sample_sum, the classic buckets as given (each
//   with its exemplar), and with `native`: schema, zero_threshold,
//   zero_count, positive_span/positive_delta (a run of more than two empty
//   buckets starts a new span; no buckets at all: the one no-op span
//   {offset 0, length 0} that marks an empty native histogram).
// No timestamps (Metric.timestamp_ms), no created timestamps, no `unit`.
// Exemplars carry request_id, trace_id when known, value and timestamp.
void append_protobuf(std::span<const FamilyView> families, std::string& out);

}  // namespace regmeter
