#include "core/metering_counters.h"

#include <array>
#include <string_view>
#include <utility>

#include <prometheus/metric_family.h>

#include "core/metric_family_data.h"
#include "core/response_meter.h"

namespace regmeter {

void MeteringCounters::record(const Exchange& e) {
  auto h = static_cast<std::size_t>(e.handler);
  auto c = static_cast<std::size_t>(e.client);
  if (h >= kHandlerCount || c >= kClientFamilyCount) return;
  ++client_requests[c][h];
  if (counts_as_client_error(e.method, e.status)) ++client_errors[c][h];
  if (e.status >= 400 && e.status <= 599) {
    auto error = static_cast<std::size_t>(e.error);
    auto series = h * kMethodCount + static_cast<std::size_t>(e.method);
    if (error < kRegistryErrorCount && series < errors.size()) ++errors[series][error];
  }
}

void MeteringCounters::add(const MeteringCounters& other) {
  for (std::size_t s = 0; s < errors.size(); ++s)
    for (std::size_t e = 0; e < kRegistryErrorCount; ++e) errors[s][e] += other.errors[s][e];
  for (std::size_t c = 0; c < kClientFamilyCount; ++c)
    for (std::size_t h = 0; h < kHandlerCount; ++h) {
      client_requests[c][h] += other.client_requests[c][h];
      client_errors[c][h] += other.client_errors[c][h];
    }
}

namespace {

prometheus::ClientMetric counter(std::vector<Label> labels, std::uint64_t value) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  m.counter.value = static_cast<double>(value);
  return m;
}

}  // namespace

void MeteringCounters::families(std::vector<CollectedFamily>& out) const {
  const auto& errors_declaration = families::kRegistryErrors;
  auto errors_family = declared_family(errors_declaration);
  for (std::size_t s = 0; s < errors.size(); ++s)
    for (std::size_t e = 0; e < kRegistryErrorCount; ++e) {
      if (errors[s][e] == 0) continue;
      auto [handler, method] = HandlerMethodSpace::values(s);
      auto error = registry_error_name(static_cast<RegistryError>(e));
      errors_family.family.metric.push_back(counter(
          labels_of(errors_declaration, std::array<std::string_view, 3>{error, handler, method}), errors[s][e]));
    }
  auto requests_family = declared_family(families::kClientRequests);
  auto client_errors_family = declared_family(families::kClientErrors);
  for (std::size_t c = 0; c < kClientFamilyCount; ++c)
    for (std::size_t h = 0; h < kHandlerCount; ++h) {
      // The error series exists wherever the request series does, so a
      // ratio never divides by a missing series.
      if (client_requests[c][h] == 0) continue;
      std::array<std::string_view, 2> values{client_family_name(static_cast<ClientFamily>(c)),
                                             handler_name(static_cast<Handler>(h))};
      requests_family.family.metric.push_back(counter(labels_of(families::kClientRequests, values), client_requests[c][h]));
      client_errors_family.family.metric.push_back(
          counter(labels_of(families::kClientErrors, values), client_errors[c][h]));
    }
  // No exemplars, no native buckets: sort_series sorts the series alone.
  for (auto* f : {&errors_family, &requests_family, &client_errors_family}) append_family(std::move(*f), out);
}

}  // namespace regmeter
