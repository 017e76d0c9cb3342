// The two kinds of family whose series are made as they are seen, not a
// fixed array: registry_http_requests_total (a row per status code) and the
// per-repository families (a slot per repository). Their storage, merging
// and rendering; a shard's Snapshot (core/metrics_snapshot.h) holds them
// beside the fixed families.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/metric_family_data.h"
#include "core/metrics_repositories.h"

namespace regmeter {

// ---- registry_http_requests_total ----

// One row of per-(handler, method) counters per status code seen. The
// code -> row table keeps the hot path to two loads; a row is allocated the
// first time a code shows up in a shard.
class CodeCounters {
 public:
  static constexpr std::size_t kSeries = kHandlerCount * kMethodCount;
  struct Row {
    int code = 0;
    std::array<std::uint64_t, kSeries> counts{};
    std::array<Exemplar, kSeries> exemplars{};
  };

  // One request: its exemplar replaces the series' one (the most recent wins).
  void count(int code, std::size_t series, const ExemplarSource* source) {
    Row& row = row_of(code);
    ++row.counts[series];
    record_exemplar(row.exemplars[series], source, 1.0);
  }
  // Merging shards: the later of the two exemplars.
  void add(const CodeCounters& other);
  const std::vector<Row>& rows() const { return rows_; }

 private:
  Row& row_of(int code) {
    auto& slot = slot_of_code_[static_cast<std::size_t>(code)];
    if (slot == 0) {
      rows_.push_back(Row{code, {}, {}});
      slot = static_cast<std::uint16_t>(rows_.size());
    }
    return rows_[slot - 1];
  }

  std::array<std::uint16_t, 1000> slot_of_code_{};  // row index + 1; 0 = none yet
  std::vector<Row> rows_;
};

// ---- the per-repository families ----

// The counters of one repository slot. `seen` has a bit per series, set by
// the first request that counts toward it (even with 0 bytes), so series
// appear once observed, as everywhere else.
struct RepositoryCounters {
  enum : std::uint8_t { kPush = 1, kPull = 2, kUpload = 4, kDownload = 8, kRedirect = 16 };
  std::uint64_t pushes = 0;
  std::uint64_t pulls = 0;
  std::uint64_t redirects = 0;  // blob GETs answered with a redirect to storage
  std::array<std::uint64_t, kDirectionCount> bytes{};
  std::uint8_t seen = 0;
  Exemplar push_exemplar, pull_exemplar;
  std::array<Exemplar, kDirectionCount> byte_exemplars{};

  void add(const RepositoryCounters& other);
};

// registry_http_requests_total{code, handler, method}, appended to `out`.
void render_requests(const CodeCounters& requests, std::vector<CollectedFamily>& out);
// The per-repository families. Without a repository label (--max-repositories
// 0) everything is in the one slot, and the label is left out.
void render_repositories(const std::vector<RepositoryCounters>& repositories, const RepositoryLabels& repository_labels,
                         std::vector<CollectedFamily>& out);

}  // namespace regmeter
