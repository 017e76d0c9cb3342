// Which exposition a /metrics scrape gets, from its Accept header. Pure.
//
// A Prometheus 2.x without feature flags lists OpenMetrics 1.0.0 first; with
// --enable-feature=native-histograms it lists the protobuf format first (the
// only one it reads native buckets from). Anything else (curl, a text-only
// scraper, no Accept at all) gets the text format 0.0.4, byte for byte what
// it got before the other two existed.
#pragma once

#include <string_view>

namespace regmeter {

enum class ExpositionFormat : unsigned char { text, openmetrics, protobuf };

// The format the Accept value prefers: the highest q among the media ranges
// we can serve, the earliest listed on a tie. Text when nothing we serve is
// acceptable (as client_golang's promhttp does), so a scrape never fails on
// negotiation. Parameters are matched case-insensitively in names; a
// protobuf range must name proto=io.prometheus.client.MetricFamily and, if it
// gives one, encoding=delimited; an OpenMetrics range must ask for version
// 1.0.0 (or give none): version 0.0.1 falls through to the next choice.
ExpositionFormat negotiate_exposition(std::string_view accept);

// The Content-Type header value for `format`.
std::string_view content_type_of(ExpositionFormat format);

// "text", "openmetrics", "protobuf".
std::string_view format_name(ExpositionFormat format);

}  // namespace regmeter
