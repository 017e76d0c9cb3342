// The cold-path families: counted rarely, from any thread, so they are
// ordinary prometheus-cpp families (atomic series) in the process registry
// (Metrics::registry()), rendered along with the shards' families. Each is
// built here from its declaration in core/metric_families.h, once at start;
// the series are then handed out as plain references, because Family::Add
// hashes and locks.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "core/metric_families.h"

namespace regmeter {

// A family of the declaration in `registry` (its type must be counter or
// gauge respectively).
prometheus::Family<prometheus::Counter>& build_counter_family(const FamilyDeclaration& d,
                                                              prometheus::Registry& registry);
prometheus::Family<prometheus::Gauge>& build_gauge_family(const FamilyDeclaration& d, prometheus::Registry& registry);

// Every cold-path series whose labels are known at start (the rate-budget
// gauges appear only once seen: net/metering.h).
struct ProcessCounters {
  explicit ProcessCounters(prometheus::Registry& registry);
  ProcessCounters(const ProcessCounters&) = delete;
  ProcessCounters& operator=(const ProcessCounters&) = delete;

 private:
  // Declared first: the series below are made from these.
  struct Families {
    explicit Families(prometheus::Registry& registry);
    prometheus::Family<prometheus::Counter>& handshake_errors;
    prometheus::Family<prometheus::Counter>& resolutions;
    prometheus::Family<prometheus::Gauge>& addresses;
    prometheus::Family<prometheus::Counter>& connect_failures;
    prometheus::Family<prometheus::Gauge>& connections;
    prometheus::Family<prometheus::Gauge>& queue_depth;
  } families_;

 public:
  // regmeter_tls_handshake_errors_total{side}
  prometheus::Counter& client_handshake_errors;
  prometheus::Counter& upstream_handshake_errors;
  // regmeter_upstream_resolutions_total{result}
  prometheus::Counter& resolutions_changed;
  prometheus::Counter& resolutions_failed;
  prometheus::Gauge& upstream_addresses;      // regmeter_upstream_addresses
  prometheus::Counter& connect_failures;      // regmeter_upstream_connect_failures_total
  // regmeter_upstream_connections{state}
  prometheus::Gauge& active_connections;
  prometheus::Gauge& idle_connections;
  prometheus::Gauge& queue_depth;             // regmeter_upstream_queue_depth
};

}  // namespace regmeter
