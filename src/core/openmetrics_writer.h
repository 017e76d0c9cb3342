// The OpenMetrics 1.0 text exposition, for scrapers that ask for it in
// Accept (a Prometheus 2.x asks for it first; it keeps the exemplars only
// with --enable-feature=exemplar-storage).
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "core/exposition.h"

namespace regmeter {

inline constexpr std::string_view kOpenMetricsContentType =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

// Appends every family, in order, then `# EOF`. Per family: `# TYPE`,
// `# HELP` (when not empty), `# UNIT` (see FamilyView::unit). Counters are
// `<family>_total` samples, the family being the name without `_total`;
// histograms are `_bucket{le=...}` samples (the +Inf bucket always present),
// then `_count` and `_sum`; no `_created`. An exemplar follows a `_total` or
// `_bucket` sample as ` # {request_id="…",trace_id="…"} <value> <seconds>`.
// `le` values and sample values are written as distribution's text
// exposition writes them (append_go_float: "1", "2.5", "1.048576e+06"), so a
// Prometheus 2.x that switches from text to OpenMetrics keeps the same `le`
// series. Label values and HELP text are escaped (\\, \" and \n).
void append_openmetrics(std::span<const FamilyView> families, std::string& out);

}  // namespace regmeter
