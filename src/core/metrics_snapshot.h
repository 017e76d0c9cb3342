// What a metrics shard holds: every per-request family's numbers for one
// shard, or the merge of several (MetricsShard::Snapshot). Private to the
// metrics (core/metrics*.cpp and their tests).
//
// Adding a family: its declaration in core/metric_families.h; if its series
// are a fixed array (by handler, method, outcome, ...), a row in CellFamilies
// below: merging and rendering follow; then its record line in
// core/metrics_snapshot.cpp. A histogram is a Buckets
// (metric_histogram.h): it gets exemplars and native buckets without
// further work.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "core/metering_counters.h"
#include "core/metrics_dynamic_families.h"
#include "core/metric_family_data.h"
#include "core/metrics.h"
#include "core/metrics_repositories.h"

namespace regmeter {

// ---- families with a fixed array of series ----

// One row per family: its declaration, how a cell index maps to label
// values, and the cell. registry_http_* stay classic only
// (metric_histogram.h says why); regmeter_http_request_duration_seconds is
// registry_http_request_duration_seconds' twin with native buckets (and the
// same classic ones, which carry its exemplars in the protobuf exposition
// Prometheus 2.42 reads them from).
using CellFamilies = std::tuple<
    DeclaredFamily<families::kInFlight, HandlerSpace, std::int64_t>,
    DeclaredFamily<families::kRequestDuration, HandlerMethodSpace, Histogram<NativeBuckets::no>>,
    DeclaredFamily<families::kRequestSize, HandlerSpace, Histogram<NativeBuckets::no>>,
    DeclaredFamily<families::kResponseSize, HandlerSpace, Histogram<NativeBuckets::no>>,
    DeclaredFamily<families::kNativeRequestDuration, HandlerMethodSpace, Histogram<>>,
    DeclaredFamily<families::kUpstreamHeader, HandlerMethodSpace, Histogram<>>,
    DeclaredFamily<families::kUpstreamConnect, NoLabelSpace, Histogram<>>,
    DeclaredFamily<families::kUpstreamQueue, NoLabelSpace, Histogram<>>,
    DeclaredFamily<families::kBlobThroughput, DirectionSpace, Histogram<NativeBuckets::yes, double>>,
    DeclaredFamily<families::kUploadSessionDuration, SessionOutcomeSpace, Histogram<>>,
    DeclaredFamily<families::kUploadSessionSize, SessionOutcomeSpace, Histogram<>>,
    DeclaredFamily<families::kImagePullDuration, PullOutcomeSpace, Histogram<>>,
    DeclaredFamily<families::kImagePullSize, PullOutcomeSpace, Histogram<>>,
    DeclaredFamily<families::kAuthChallenges, HandlerSpace, CounterCell>,
    DeclaredFamily<families::kRejectedConnections, RejectReasonSpace, std::uint64_t>>;

inline bool is_upload_handler(Handler h) { return h == Handler::blob_upload || h == Handler::blob_upload_chunk; }

// Whether the exchange counts toward a per-repository family (so whether its
// repository needs a slot at all). Inline: asked twice per request.
inline bool counts_per_repository(const Exchange& e) {
  if (e.handler == Handler::manifest)
    return (e.method == Method::put && e.status == 201) || (e.method == Method::get && e.status == 200);
  return is_upload_handler(e.handler) || (e.handler == Handler::blob && e.method == Method::get);
}

// ---- the snapshot ----

// All numbers of one shard, or the merge of several.
struct MetricsShard::Snapshot {
  CellFamilies cells;
  CodeCounters requests;                         // registry_http_requests_total
  std::vector<RepositoryCounters> repositories;  // [slot]; grows to at most max_repositories + 1
  MeteringCounters metering;                     // error codes, client families (issue 16)

  // The storage of a family in CellFamilies: get<families::kInFlight>().
  template <const FamilyDeclaration& D>
  auto& get() {
    return std::get<DeclaredIndex<D, CellFamilies>::value>(cells);
  }
  template <const FamilyDeclaration& D>
  const auto& get() const {
    return std::get<DeclaredIndex<D, CellFamilies>::value>(cells);
  }

  // `repository_slot` matters only when counts_per_repository(e).
  // `source` (may be null) names the request in the exemplars it writes.
  void record(const Exchange& e, std::uint32_t repository_slot, const ExemplarSource* source);
  void record_connect(Clock::duration connect_time);
  void record_session(SessionOutcome outcome, double seconds, std::uint64_t bytes);
  void record_rejection(RejectReason reason);
  void record_pull(const EndedPull& pull);

  void add(const Snapshot& other);

  // The families with at least one series.
  std::vector<CollectedFamily> families(const RepositoryLabels& repository_labels) const;
};

// Cache-line aligned so two workers' shards never share a line.
// A shard made on its own (not by Metrics) has a repository table of its own
// with the default bound; Metrics points all of its shards at one table.
struct alignas(64) MetricsShard::Impl {
  mutable std::mutex mutex;
  Snapshot data;
  std::uint64_t started = 0;
  RepositoryCache repositories{std::make_shared<RepositoryTable>(MetricsOptions{}.max_repositories)};
};

}  // namespace regmeter
