// Recording numbers. The data path hands one plain Exchange record per
// finished request to its thread's MetricsShard; a scrape merges all shards
// and renders the text, OpenMetrics or protobuf exposition.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/exchange_record.h"
#include "core/exposition_format.h"
#include "core/upload_session.h"

namespace prometheus {
class Registry;
struct MetricFamily;
}

namespace regmeter {

struct EndedPull;  // core/pull_sessions.h

// Why a connection was refused before any request on it could be parsed.
// A Go registry answers these before its metrics middleware and counts
// nothing, so they are counted in regmeter_rejected_connections_total and
// never in registry_http_*. Requests that parsed and were then refused by
// policy (CONNECT, framing, the target) stay under handler="other".
enum class RejectReason : std::uint8_t {
  tls_on_plain_port,    // a TLS ClientHello on the plain-HTTP port (clients that try HTTPS first)
  http_on_tls_port,     // plain HTTP on the TLS port
  not_http,             // bytes that cannot start an HTTP request
  malformed_head,       // a head the parser refused (400)
  unsupported_version,  // an HTTP version other than 1.0/1.1 (505)
  head_too_large,       // over --max-header-bytes (431)
  header_timeout,       // no whole head within --header-timeout (408)
};
inline constexpr std::size_t kRejectReasonCount = 7;
std::string_view reject_reason_name(RejectReason reason);

struct MetricsOptions {
  // Distinct `repository` label values before the rest are counted under
  // "__other__"; 0 drops the label from the per-repository families.
  std::size_t max_repositories = 200;
};

class MetricsShard;

// Owns one shard per worker thread. Recording goes to the caller's shard
// (one uncontended mutex each, never a process-wide lock); scraping locks
// each shard in turn and merges.
class Metrics {
 public:
  explicit Metrics(std::size_t shard_count, MetricsOptions options = {});
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  MetricsShard& shard(std::size_t index);
  std::size_t shard_count() const;

  // Prometheus text exposition format 0.0.4 of every metric, families sorted
  // by name and series by label values, as distribution's Go exporter does.
  // Locks each shard only while copying it. Serializing dominates the cost:
  // about 3 ms CPU for every handler x method x 4 codes populated
  // (BM_RenderText; docs/benchmarks.md).
  std::string render_text() const;
  // The same numbers in `format`: text is render_text(); protobuf adds native
  // buckets (regmeter_* histograms) and exemplars; OpenMetrics 1.0 adds
  // exemplars and ends in `# EOF`.
  std::string render(ExpositionFormat format) const;

  // The per-request families alone, merged but not serialized (include
  // <prometheus/metric_family.h> to use them): for the dashboard history.
  std::vector<prometheus::MetricFamily> collect_http_families() const;

  // Requests started so far and requests in flight now, over every shard
  // (locks each in turn): for housekeeping that waits for a quiet moment.
  struct Activity {
    std::uint64_t started = 0;
    std::int64_t in_flight = 0;
  };
  Activity activity() const;

  // For cold-path metrics (counted rarely, from any thread): ordinary
  // prometheus-cpp families built here are rendered along with the HTTP ones.
  // Per-request numbers belong in the shards instead.
  prometheus::Registry& registry();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class MetricsShard {
 public:
  MetricsShard();
  ~MetricsShard();
  MetricsShard(const MetricsShard&) = delete;
  MetricsShard& operator=(const MetricsShard&) = delete;

  // A request head was classified and is now in flight.
  void request_started(Handler handler);
  // That request is finished (on every path: success, error, abort). Must
  // follow exactly one request_started(exchange.handler) on the same shard.
  // Status 0 is counted as code kClientClosedStatus.
  void request_finished(const Exchange& exchange);

  // A new upstream connection is ready (TCP connect, TLS handshake later).
  void upstream_connected(Clock::duration connect_time);
  // A blob upload session ended; `seconds` from the first byte of its POST to
  // the last byte of the response that closed it (for `abandoned`: its last
  // request), `bytes` the body bytes all its requests carried.
  void upload_session_closed(SessionOutcome outcome, double seconds, std::uint64_t bytes);
  // A connection was refused before a request on it could be parsed.
  void connection_rejected(RejectReason reason);
  // A whole image pull ended (PullSessions).
  void image_pull_ended(const EndedPull& pull);

  Metrics::Activity activity() const;

  struct Snapshot;  // defined in metrics.cpp
  void merge_into(Snapshot& out) const;

 private:
  friend class Metrics;  // connects each shard to the process-wide repository table
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace regmeter
