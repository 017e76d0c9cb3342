// Per-request numbers, recorded into per-thread shards and merged on scrape.
//
// Recording is plain integer arithmetic under the shard's own mutex, which
// only its worker thread and a scrape ever take. A scrape merges every shard
// into one Snapshot, turns it into prometheus-cpp MetricFamily values (with
// exemplars and native buckets beside them, metrics_exposition.h) and lets
// prometheus::TextSerializer write the text exposition, or our own writers
// the OpenMetrics and protobuf ones.
//
// Where things are: every family's name, help, type, labels and bounds in
// core/metric_families.h; a shard's storage in core/metrics_snapshot.h
// (recording and merging in metrics_snapshot.cpp, rendering in
// metrics_render.cpp); this file holds the shards and the process-wide
// repository table. Adding a family: see core/metrics_snapshot.h.
//
// The per-repository families bound their `repository` label with a
// process-wide table (the first N names seen get a slot; the rest share the
// `__other__` slot). Each shard keeps a cache of the slots it has used, so the
// table's mutex is taken only the first time a shard meets a name, and never
// again once the table is full and the shard has copied it.
#include "core/metrics.h"

#include <algorithm>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>

#include <prometheus/metric_family.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "core/float_format.h"
#include "core/metrics_exposition.h"
#include "core/metrics_snapshot.h"

namespace regmeter {
namespace {

// ---- repository label bounding ----

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
using SlotMap = std::unordered_map<std::string, std::uint32_t, StringHash, std::equal_to<>>;

// Process-wide: the first `max` distinct names seen, in order, each with a
// stable slot. Names are never removed, so a slot, once handed out, means the
// same repository for the life of the process.
class RepositoryTable {
 public:
  explicit RepositoryTable(std::size_t max) : max_(max) {}

  bool labelled() const { return max_ != 0; }

  // The slot of `name`, assigned now if there is room. When the table is full
  // (after this call), copies every assignment into `cache` and sets
  // `complete`: the caller then never needs to ask again.
  std::uint32_t lookup(std::string_view name, SlotMap& cache, bool& complete) {
    std::lock_guard lock(mutex_);
    std::uint32_t slot = kOtherSlot;
    if (auto it = slots_.find(name); it != slots_.end()) {
      slot = it->second;
    } else if (names_.size() < max_) {
      names_.emplace_back(name);
      slot = static_cast<std::uint32_t>(names_.size());
      slots_.emplace(std::string(name), slot);
    }
    if (names_.size() >= max_) {
      cache.insert(slots_.begin(), slots_.end());
      complete = true;
    } else if (slot != kOtherSlot) {
      cache.emplace(std::string(name), slot);
    }
    return slot;
  }

  // Slot s > 0 is names()[s - 1].
  std::vector<std::string> names() const {
    std::lock_guard lock(mutex_);
    return names_;
  }

 private:
  const std::size_t max_;
  mutable std::mutex mutex_;
  SlotMap slots_;
  std::vector<std::string> names_;
};

// Per shard, used only by its worker thread (under the shard's mutex): the
// slots this shard has already looked up. At most `max` entries: names that
// fall into `__other__` are not cached, and once the table is full the cache
// holds all of it, so a miss is `__other__` without asking.
struct RepositoryCache {
  explicit RepositoryCache(std::shared_ptr<RepositoryTable> t) : table(std::move(t)) {}

  std::shared_ptr<RepositoryTable> table;
  SlotMap known;
  bool complete = false;

  std::uint32_t slot_of(std::string_view name) {
    if (!table->labelled() || name.empty()) return kOtherSlot;
    if (auto it = known.find(name); it != known.end()) return it->second;
    if (complete) return kOtherSlot;
    return table->lookup(name, known, complete);
  }
};

}  // namespace

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

// ---- MetricsShard ----

// Cache-line aligned so two workers' shards never share a line.
// A shard made on its own (not by Metrics) has a repository table of its own
// with the default bound; Metrics points all of its shards at one table.
struct alignas(64) MetricsShard::Impl {
  mutable std::mutex mutex;
  Snapshot data;
  std::uint64_t started = 0;
  RepositoryCache repositories{std::make_shared<RepositoryTable>(MetricsOptions{}.max_repositories)};
};

MetricsShard::MetricsShard() : impl_(std::make_unique<Impl>()) {}
MetricsShard::~MetricsShard() = default;

void MetricsShard::request_started(Handler handler) {
  std::lock_guard lock(impl_->mutex);
  ++impl_->data.get<snapshot_families::InFlight>()[static_cast<std::size_t>(handler)];
  ++impl_->started;
}

Metrics::Activity MetricsShard::activity() const {
  std::lock_guard lock(impl_->mutex);
  Metrics::Activity out;
  out.started = impl_->started;
  for (auto n : impl_->data.get<snapshot_families::InFlight>().cells) out.in_flight += n;
  return out;
}

void MetricsShard::request_finished(const Exchange& exchange) {
  std::lock_guard lock(impl_->mutex);
  std::uint32_t slot = counts_per_repository(exchange) ? impl_->repositories.slot_of(exchange.repository) : kOtherSlot;
  ExemplarSource source{exchange.request_id, exchange.trace_id, exchange.finished_unix_ns};
  impl_->data.record(exchange, slot, &source);
}

void MetricsShard::upstream_connected(Clock::duration connect_time) {
  std::lock_guard lock(impl_->mutex);
  impl_->data.record_connect(connect_time);
}

void MetricsShard::upload_session_closed(SessionOutcome outcome, double seconds, std::uint64_t bytes) {
  std::lock_guard lock(impl_->mutex);
  impl_->data.record_session(outcome, seconds, bytes);
}

void MetricsShard::connection_rejected(RejectReason reason) {
  std::lock_guard lock(impl_->mutex);
  impl_->data.record_rejection(reason);
}

void MetricsShard::image_pull_ended(const EndedPull& pull) {
  std::lock_guard lock(impl_->mutex);
  impl_->data.record_pull(pull);
}

void MetricsShard::merge_into(Snapshot& out) const {
  std::lock_guard lock(impl_->mutex);
  out.add(impl_->data);
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
