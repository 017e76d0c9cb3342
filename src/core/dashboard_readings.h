// Which counters the /dashboard history keeps (core/metric_history.h), read
// from the merged per-request families (Metrics::collect_http_families()).
// Each family below is one chart or table on the page; its labels are
// bounded by construction (bucket bounds, handlers, codes' classes,
// directions, outcomes), never by repository or client.
//
//   upload_latency    per duration bucket (upper bound, as `le` is written):
//                     registry_http_request_duration_seconds, handler
//                     blob_upload_chunk, methods PATCH and PUT summed;
//                     per-bucket counts, not cumulative
//   session_duration  per bucket: regmeter_upload_session_duration_seconds,
//                     every outcome summed; per-bucket counts
//   requests          per handler: registry_http_requests_total
//   errors            per handler: the 5xx part of registry_http_requests_total
//   sessions          per outcome: ended upload sessions
//   blob_bytes        per direction: regmeter_blob_bytes_total over repositories
#pragma once

#include <vector>

#include "core/metric_history.h"

namespace prometheus {
struct MetricFamily;
}

namespace regmeter {

std::vector<MetricReading> dashboard_readings(const std::vector<prometheus::MetricFamily>& families);

}  // namespace regmeter
