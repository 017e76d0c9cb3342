// Per-request numbers, recorded into per-thread shards and merged on scrape.
//
// Recording is plain integer arithmetic under the shard's own mutex, which
// only its worker thread and a scrape ever take. A scrape merges every shard
// into one Snapshot, turns it into prometheus-cpp MetricFamily values (with
// exemplars and native buckets beside them, metrics_exposition.h) and lets
// prometheus::TextSerializer write the text exposition, or our own writers
// the OpenMetrics and protobuf ones.
//
// Where things are:
//   core/metric_families.h      every family's name, help, type, labels, bounds
//   core/metrics_snapshot.h     a shard's storage (Snapshot) and MetricsShard::Impl
//   core/metrics_snapshot.cpp   recording (MetricsShard) and merging
//   core/metrics_dynamic_families.h  the families made as they are seen (codes,
//                               repositories): storage, merging, rendering
//   core/metrics_repositories.h the bound on the `repository` label
//   this file                   Metrics: the shards, the scrape, the formats
//
// Adding a family: its declaration in core/metric_families.h; for a family
// whose series are a fixed array (by handler, method, outcome, ...) a
// DeclaredFamily row in CellFamilies (core/metrics_snapshot.h), from which
// merging and rendering follow; and its record line in metrics_snapshot.cpp.
// A histogram is a Buckets (metric_histogram.h): it gets exemplars and native
// buckets without further work. metric_families_test lists every family by
// hand: add it there too.
#include "core/metrics.h"

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include <prometheus/metric_family.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "core/float_format.h"
#include "core/metrics_exposition.h"
#include "core/metrics_snapshot.h"

namespace regmeter {

std::string_view reject_reason_name(RejectReason reason) {
  switch (reason) {
    case RejectReason::tls_on_plain_port: return "tls_on_plain_port";
    case RejectReason::http_on_tls_port: return "http_on_tls_port";
    case RejectReason::not_http: return "not_http";
    case RejectReason::malformed_head: return "malformed_head";
    case RejectReason::unsupported_version: return "unsupported_version";
    case RejectReason::head_too_large: return "head_too_large";
    case RejectReason::header_timeout: return "header_timeout";
  }
  return "unknown";
}

// ---- Metrics ----

namespace {

// The HTTP families of every shard, merged, and the snapshot their extras
// point into (it must outlive the families). Locks one shard at a time, so
// no worker waits for more than one copy.
struct MergedFamilies {
  std::unique_ptr<MetricsShard::Snapshot> snapshot = std::make_unique<MetricsShard::Snapshot>();  // large: off the stack
  std::vector<CollectedFamily> families;
};

MergedFamilies merge_shards(const std::vector<std::unique_ptr<MetricsShard>>& shards, const RepositoryTable& repositories) {
  MergedFamilies out;
  for (const auto& shard : shards) shard->merge_into(*out.snapshot);
  // Read after the merge: every slot a shard used was named before it was used.
  RepositoryLabels labels{repositories.labelled(), repositories.names()};
  out.families = out.snapshot->families(labels);
  return out;
}

}  // namespace

struct Metrics::Impl {
  explicit Impl(const MetricsOptions& options)
      : repositories(std::make_shared<RepositoryTable>(options.max_repositories)) {}

  std::shared_ptr<RepositoryTable> repositories;
  std::vector<std::unique_ptr<MetricsShard>> shards;
  prometheus::Registry registry;
};

Metrics::Metrics(std::size_t shard_count, MetricsOptions options) : impl_(std::make_unique<Impl>(options)) {
  if (shard_count == 0) throw std::invalid_argument("Metrics needs at least one shard");
  impl_->shards.reserve(shard_count);
  for (std::size_t i = 0; i < shard_count; ++i) {
    auto shard = std::make_unique<MetricsShard>();
    shard->impl_->repositories.table = impl_->repositories;
    impl_->shards.push_back(std::move(shard));
  }
}

Metrics::~Metrics() = default;

MetricsShard& Metrics::shard(std::size_t index) { return *impl_->shards.at(index); }

std::size_t Metrics::shard_count() const { return impl_->shards.size(); }

Metrics::Activity Metrics::activity() const {
  Activity total;
  for (const auto& shard : impl_->shards) {
    Activity one = shard->activity();
    total.started += one.started;
    total.in_flight += one.in_flight;
  }
  return total;
}

prometheus::Registry& Metrics::registry() { return impl_->registry; }

std::vector<prometheus::MetricFamily> Metrics::collect_http_families() const {
  std::vector<prometheus::MetricFamily> plain;
  for (auto& collected : merge_shards(impl_->shards, *impl_->repositories).families)
    plain.push_back(std::move(collected.family));
  return plain;
}

std::string Metrics::render_text() const { return render(ExpositionFormat::text); }

std::string Metrics::render(ExpositionFormat format) const {
  auto merged = merge_shards(impl_->shards, *impl_->repositories);
  auto& families = merged.families;
  for (auto& cold : impl_->registry.Collect()) families.push_back(CollectedFamily{std::move(cold), {}});
  std::stable_sort(families.begin(), families.end(), [](const CollectedFamily& a, const CollectedFamily& b) {
    return a.family.name < b.family.name;
  });
  if (format != ExpositionFormat::text) {
    std::string out;
    append_exposition(families, format, out);
    return out;
  }
  std::vector<prometheus::MetricFamily> plain;
  plain.reserve(families.size());
  for (auto& f : families) plain.push_back(std::move(f.family));
  return with_go_style_le(prometheus::TextSerializer().Serialize(plain));
}

}  // namespace regmeter
