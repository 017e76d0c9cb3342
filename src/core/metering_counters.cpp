#include "core/metering_counters.h"

#include <algorithm>
#include <string>

#include <prometheus/metric_family.h>

#include "core/metrics_exposition.h"

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

prometheus::ClientMetric counter(std::vector<prometheus::ClientMetric::Label> labels, std::uint64_t value) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  m.counter.value = static_cast<double>(value);
  return m;
}

prometheus::MetricFamily counter_family(std::string name, std::string help) {
  prometheus::MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = prometheus::MetricType::Counter;
  return f;
}

}  // namespace

void MeteringCounters::families(std::vector<CollectedFamily>& out) const {
  auto errors_family = counter_family(
      "regmeter_registry_errors_total",
      "Answers with status 400-599, by the OCI error code of the first entry of their JSON errors array (other: "
      "a code outside the spec's table; none: no parseable error body).");
  for (std::size_t s = 0; s < errors.size(); ++s)
    for (std::size_t e = 0; e < kRegistryErrorCount; ++e) {
      if (errors[s][e] == 0) continue;
      errors_family.metric.push_back(
          counter({{"error", std::string(registry_error_name(static_cast<RegistryError>(e)))},
                   {"handler", std::string(handler_name(static_cast<Handler>(s / kMethodCount)))},
                   {"method", std::string(method_name(static_cast<Method>(s % kMethodCount)))}},
                  errors[s][e]));
    }
  auto requests_family = counter_family("regmeter_client_requests_total",
                                        "Requests by the client family of their User-Agent, and handler.");
  auto client_errors_family = counter_family(
      "regmeter_client_errors_total",
      "Requests answered with an error (5xx, or 4xx other than 401 challenges and 404s to HEAD existence checks), "
      "by client family and handler.");
  for (std::size_t c = 0; c < kClientFamilyCount; ++c)
    for (std::size_t h = 0; h < kHandlerCount; ++h) {
      std::vector<prometheus::ClientMetric::Label> labels{
          {"client", std::string(client_family_name(static_cast<ClientFamily>(c)))},
          {"handler", std::string(handler_name(static_cast<Handler>(h)))}};
      // The error series exists wherever the request series does, so a
      // ratio never divides by a missing series.
      if (client_requests[c][h] == 0) continue;
      requests_family.metric.push_back(counter(labels, client_requests[c][h]));
      client_errors_family.metric.push_back(counter(labels, client_errors[c][h]));
    }
  for (auto* f : {&errors_family, &requests_family, &client_errors_family}) {
    if (f->metric.empty()) continue;
    std::sort(f->metric.begin(), f->metric.end(),
              [](const prometheus::ClientMetric& a, const prometheus::ClientMetric& b) { return a.label < b.label; });
    out.push_back(CollectedFamily{std::move(*f), {}});  // no exemplars, no native buckets
  }
}

}  // namespace regmeter
