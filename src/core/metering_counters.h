// The per-request counters of issue 16 (error codes, client families), kept
// in each metrics shard beside the HTTP families: plain array increments on
// the request path, merged and rendered on scrape. Every label value comes
// from a closed enum, so the series are bounded by construction:
//   regmeter_registry_errors_total{handler,method,error}  9 × 8 × 22
//   regmeter_client_requests_total{client,handler}        9 × 9
//   regmeter_client_errors_total{client,handler}          9 × 9
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "core/client_family.h"
#include "core/exchange_record.h"
#include "core/registry_error.h"
#include "core/route.h"

namespace regmeter {

struct CollectedFamily;  // core/metrics_exposition.h

struct MeteringCounters {
  // [handler × method][error]: answers with status 400-599 only.
  std::array<std::array<std::uint64_t, kRegistryErrorCount>, kHandlerCount * kMethodCount> errors{};
  std::array<std::array<std::uint64_t, kHandlerCount>, kClientFamilyCount> client_requests{};
  std::array<std::array<std::uint64_t, kHandlerCount>, kClientFamilyCount> client_errors{};

  void record(const Exchange& e);
  void add(const MeteringCounters& other);
  // Appends the three families (series appear once counted).
  void families(std::vector<CollectedFamily>& out) const;
};

}  // namespace regmeter
