#include "core/metric_process_counters.h"

#include <stdexcept>
#include <string>

namespace regmeter {
namespace {

void require_type(const FamilyDeclaration& d, prometheus::MetricType type) {
  if (d.type != type) throw std::logic_error("metric family " + std::string(d.name) + " is declared another type");
}

}  // namespace

prometheus::Family<prometheus::Counter>& build_counter_family(const FamilyDeclaration& d,
                                                              prometheus::Registry& registry) {
  require_type(d, prometheus::MetricType::Counter);
  return prometheus::BuildCounter().Name(std::string(d.name)).Help(std::string(d.help)).Register(registry);
}

prometheus::Family<prometheus::Gauge>& build_gauge_family(const FamilyDeclaration& d, prometheus::Registry& registry) {
  require_type(d, prometheus::MetricType::Gauge);
  return prometheus::BuildGauge().Name(std::string(d.name)).Help(std::string(d.help)).Register(registry);
}

namespace {

// One series of a family with one label; the series are made in the order
// the members are initialized, the order server.cpp always made them in.
template <typename Metric>
Metric& series(prometheus::Family<Metric>& family, const FamilyDeclaration& d, const char* value) {
  return family.Add({{std::string(d.labels[0]), value}});
}

}  // namespace

ProcessCounters::Families::Families(prometheus::Registry& registry)
    : handshake_errors(build_counter_family(families::kTlsHandshakeErrors, registry)),
      resolutions(build_counter_family(families::kUpstreamResolutions, registry)),
      addresses(build_gauge_family(families::kUpstreamAddresses, registry)),
      connect_failures(build_counter_family(families::kUpstreamConnectFailures, registry)),
      connections(build_gauge_family(families::kUpstreamConnections, registry)),
      queue_depth(build_gauge_family(families::kUpstreamQueueDepth, registry)) {}

ProcessCounters::ProcessCounters(prometheus::Registry& registry)
    : families_(registry),
      client_handshake_errors(series(families_.handshake_errors, families::kTlsHandshakeErrors, "client")),
      upstream_handshake_errors(series(families_.handshake_errors, families::kTlsHandshakeErrors, "upstream")),
      resolutions_changed(series(families_.resolutions, families::kUpstreamResolutions, "changed")),
      resolutions_failed(series(families_.resolutions, families::kUpstreamResolutions, "error")),
      upstream_addresses(families_.addresses.Add({})),
      connect_failures(families_.connect_failures.Add({})),
      active_connections(series(families_.connections, families::kUpstreamConnections, "active")),
      idle_connections(series(families_.connections, families::kUpstreamConnections, "idle")),
      queue_depth(families_.queue_depth.Add({})) {}

}  // namespace regmeter
