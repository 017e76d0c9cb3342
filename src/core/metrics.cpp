// Per-request numbers, recorded into per-thread shards and merged on scrape.
//
// Recording is plain integer arithmetic under the shard's own mutex, which
// only its worker thread and a scrape ever take. A scrape merges every shard
// into one Snapshot, turns it into prometheus-cpp MetricFamily values (with
// exemplars and native buckets beside them, metrics_exposition.h) and lets
// prometheus::TextSerializer write the text exposition, or our own writers
// the OpenMetrics and protobuf ones.
//
// Adding a family: a member in Snapshot, a line in Snapshot::record (or a new
// recording method on MetricsShard), one in Snapshot::add, and its rendering
// in Snapshot::families. A histogram is a Buckets (metric_histogram.h): it
// gets exemplars and native buckets without further work.
//
// The per-repository families bound their `repository` label with a
// process-wide table (the first N names seen get a slot; the rest share the
// `__other__` slot). Each shard keeps a cache of the slots it has used, so the
// table's mutex is taken only the first time a shard meets a name, and never
// again once the table is full and the shard has copied it.
#include "core/metrics.h"
#include "core/metering_counters.h"
#include "core/pull_sessions.h"

#include <algorithm>
#include <array>
#include <bit>
#include <limits>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>

#include <prometheus/metric_family.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "core/float_format.h"
#include "core/metric_histogram.h"
#include "core/metrics_exposition.h"

namespace regmeter {
namespace {

// docker/go-metrics' defaults, used by distribution for every route.
constexpr std::array<std::int64_t, 13> kDurationBoundsNs = {
    5'000'000,     10'000'000,     25'000'000,     50'000'000,    100'000'000,
    250'000'000,   500'000'000,    1'000'000'000,  2'500'000'000, 5'000'000'000,
    10'000'000'000, 25'000'000'000, 60'000'000'000,
};
constexpr std::size_t kSizeBoundCount = 22;  // 1024 * 2^k, k = 0..21
constexpr std::size_t kSeriesPerHandler = kMethodCount;
constexpr std::size_t kHandlerMethodCount = kHandlerCount * kMethodCount;

// regmeter_upload_session_duration_seconds: a layer push takes from well
// under a second to hours on a slow link.
constexpr std::array<std::int64_t, 16> kSessionDurationBoundsNs = {
    100'000'000,       250'000'000,       500'000'000,       1'000'000'000,
    2'500'000'000,     5'000'000'000,     10'000'000'000,    30'000'000'000,
    60'000'000'000,    120'000'000'000,   300'000'000'000,   600'000'000'000,
    1'200'000'000'000, 1'800'000'000'000, 3'600'000'000'000, 7'200'000'000'000,
};
// regmeter_upload_session_size_bytes: 1024 * 4^k, k = 0..12 (1 KiB .. 16 GiB).
constexpr std::size_t kSessionSizeBoundCount = 13;
// regmeter_upstream_header_seconds: includes sending an upload body.
constexpr std::array<std::int64_t, 20> kUpstreamHeaderBoundsNs = {
    1'000'000,       2'500'000,       5'000'000,         10'000'000,        25'000'000,
    50'000'000,      100'000'000,     250'000'000,       500'000'000,       1'000'000'000,
    2'500'000'000,   5'000'000'000,   10'000'000'000,    25'000'000'000,    60'000'000'000,
    120'000'000'000, 300'000'000'000, 600'000'000'000,   1'800'000'000'000, 3'600'000'000'000,
};
// regmeter_upstream_connect_seconds.
constexpr std::array<std::int64_t, 16> kConnectBoundsNs = {
    100'000,     250'000,     500'000,       1'000'000,     2'500'000,     5'000'000,
    10'000'000,  25'000'000,  50'000'000,    100'000'000,   250'000'000,   500'000'000,
    1'000'000'000, 2'500'000'000, 5'000'000'000, 10'000'000'000,
};
// regmeter_image_pull_duration_seconds: a whole image pull, from a cached
// manifest check to a multi-GiB image on a slow link; reaches an hour.
constexpr std::array<std::int64_t, 13> kPullDurationBoundsNs = {
    500'000'000,     1'000'000'000,   2'500'000'000,     5'000'000'000,     10'000'000'000,
    30'000'000'000,  60'000'000'000,  120'000'000'000,   300'000'000'000,   600'000'000'000,
    1'200'000'000'000, 1'800'000'000'000, 3'600'000'000'000,
};
// regmeter_image_pull_size_bytes: 1 MiB * 4^k, k = 0..9 (1 MiB .. 256 GiB).
constexpr std::size_t kPullSizeBoundCount = 10;
// regmeter_blob_throughput_bytes_per_second: 65536 * 2^k, k = 0..17
// (64 KiB/s .. 8 GiB/s); observed only for bodies of at least 1 MiB.
constexpr std::size_t kThroughputBoundCount = 18;
constexpr std::uint64_t kThroughputMinBytes = std::uint64_t{1} << 20;

enum class Direction : std::uint8_t { upload, download };
constexpr std::size_t kDirectionCount = 2;
std::string_view direction_name(std::size_t d) { return d == 0 ? "upload" : "download"; }

// registry_http_* stay classic only (metric_histogram.h says why).
using DurationBuckets = Buckets<kDurationBoundsNs.size(), std::uint64_t, NativeBuckets::no>;
using SizeBuckets = Buckets<kSizeBoundCount, std::uint64_t, NativeBuckets::no>;
// regmeter_http_request_duration_seconds: registry_http_request_duration_seconds'
// twin with native buckets (and the same classic ones, which carry its
// exemplars in the protobuf exposition Prometheus 2.42 reads them from).
using NativeDurationBuckets = Buckets<kDurationBoundsNs.size()>;
using SessionDurationBuckets = Buckets<kSessionDurationBoundsNs.size()>;
using SessionSizeBuckets = Buckets<kSessionSizeBoundCount>;
using UpstreamHeaderBuckets = Buckets<kUpstreamHeaderBoundsNs.size()>;
using ConnectBuckets = Buckets<kConnectBoundsNs.size()>;
using ThroughputBuckets = Buckets<kThroughputBoundCount, double>;
using PullDurationBuckets = Buckets<kPullDurationBoundsNs.size()>;
using PullSizeBuckets = Buckets<kPullSizeBoundCount>;

// Most requests are fast, so a linear scan usually stops at the first bound.
template <std::size_t N>
std::size_t linear_bucket(const std::array<std::int64_t, N>& bounds, std::int64_t ns) {
  std::size_t i = 0;
  while (i < N && ns > bounds[i]) ++i;
  return i;
}
std::size_t duration_bucket(std::int64_t ns) { return linear_bucket(kDurationBoundsNs, ns); }

// A time span in nanoseconds, never negative.
std::int64_t nanoseconds(Clock::duration d) {
  return std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
}

bool happened(Clock::time_point t) { return t != Clock::time_point{}; }

// Smallest k with bytes <= 1024 << k: bytes <= 2^n exactly when
// bit_width(bytes - 1) <= n.
std::size_t size_bucket(std::uint64_t bytes) {
  if (bytes <= 1024) return 0;
  return std::min<std::size_t>(std::bit_width(bytes - 1) - 10, kSizeBoundCount);
}

// Smallest k with bytes <= 1024 << 2k, i.e. ceil((bit_width(bytes - 1) - 10) / 2).
std::size_t session_size_bucket(std::uint64_t bytes) {
  if (bytes <= 1024) return 0;
  return std::min<std::size_t>((std::bit_width(bytes - 1) - 9) / 2, kSessionSizeBoundCount);
}

// Smallest k with bytes <= 1 MiB << 2k.
std::size_t pull_size_bucket(std::uint64_t bytes) {
  if (bytes <= (std::uint64_t{1} << 20)) return 0;
  return std::min<std::size_t>((std::bit_width(bytes - 1) - 19) / 2, kPullSizeBoundCount);
}

std::size_t series_index(Handler handler, Method method) {
  return static_cast<std::size_t>(handler) * kSeriesPerHandler + static_cast<std::size_t>(method);
}

// The `code` label. Anything that is not a status line the client received
// (0, or garbage a caller should never pass) is "the client went away".
int code_of(int status) { return status >= 100 && status <= 999 ? status : kClientClosedStatus; }

// registry_http_requests_total: one row of per-(handler, method) counters per
// status code seen. The code -> row table keeps the hot path to two loads;
// a row is allocated the first time a code shows up in a shard.
class CodeCounters {
 public:
  struct Row {
    int code = 0;
    std::array<std::uint64_t, kHandlerMethodCount> counts{};
    std::array<Exemplar, kHandlerMethodCount> exemplars{};
  };

  // One request: its exemplar replaces the series' one (the most recent wins).
  void count(int code, std::size_t series, const ExemplarSource* source) {
    Row& row = row_of(code);
    ++row.counts[series];
    record_exemplar(row.exemplars[series], source, 1.0);
  }
  // Merging shards: the later of the two exemplars.
  void add(const CodeCounters& other) {
    for (const auto& row : other.rows_)
      for (std::size_t s = 0; s < row.counts.size(); ++s) {
        if (row.counts[s] == 0) continue;
        Row& mine = row_of(row.code);
        mine.counts[s] += row.counts[s];
        keep_latest(mine.exemplars[s], row.exemplars[s]);
      }
  }
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

using Label = prometheus::ClientMetric::Label;

Label label(std::string_view name, std::string_view value) {
  return Label{std::string(name), std::string(value)};
}

template <std::size_t N, typename Sum, NativeBuckets Native>
void add_histogram(CollectedFamily& f, std::vector<Label> labels, const Buckets<N, Sum, Native>& buckets,
                   const std::array<double, N>& upper_bounds, double unit) {
  prometheus::ClientMetric metric;
  metric.label = std::move(labels);
  auto& h = metric.histogram;
  h.bucket.reserve(N + 1);
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < N; ++i) {
    cumulative += buckets.counts[i];
    h.bucket.push_back({cumulative, upper_bounds[i]});
  }
  cumulative += buckets.counts[N];
  h.bucket.push_back({cumulative, std::numeric_limits<double>::infinity()});
  h.sample_count = cumulative;
  h.sample_sum = static_cast<double>(buckets.sum) / unit;
  f.family.metric.push_back(std::move(metric));
  f.extras.push_back(SeriesExtras{nullptr, buckets.exemplars.data(), buckets.native_or_null()});
}

void add_counter(CollectedFamily& f, std::vector<Label> labels, double value, const Exemplar* exemplar) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  m.counter.value = value;
  f.family.metric.push_back(std::move(m));
  f.extras.push_back(SeriesExtras{exemplar, nullptr, nullptr});
}

// Division of two exact integers rounds to the same double as the decimal
// literal (0.005 etc.), so the `le` values print exactly as distribution's.
constexpr double kNsPerSecond = 1e9;
const std::array<double, kDurationBoundsNs.size()> kDurationBoundsSeconds = [] {
  std::array<double, kDurationBoundsNs.size()> out{};
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<double>(kDurationBoundsNs[i]) / kNsPerSecond;
  return out;
}();
const std::array<double, kSizeBoundCount> kSizeBounds = [] {
  std::array<double, kSizeBoundCount> out{};
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<double>(std::uint64_t{1024} << i);
  return out;
}();

template <std::size_t N>
std::array<double, N> seconds_of(const std::array<std::int64_t, N>& ns) {
  std::array<double, N> out{};
  for (std::size_t i = 0; i < N; ++i) out[i] = static_cast<double>(ns[i]) / kNsPerSecond;
  return out;
}
const auto kSessionDurationBoundsSeconds = seconds_of(kSessionDurationBoundsNs);
const auto kUpstreamHeaderBoundsSeconds = seconds_of(kUpstreamHeaderBoundsNs);
const auto kConnectBoundsSeconds = seconds_of(kConnectBoundsNs);
const std::array<double, kSessionSizeBoundCount> kSessionSizeBounds = [] {
  std::array<double, kSessionSizeBoundCount> out{};
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<double>(std::uint64_t{1024} << (2 * i));
  return out;
}();
const auto kPullDurationBoundsSeconds = seconds_of(kPullDurationBoundsNs);
const std::array<double, kPullSizeBoundCount> kPullSizeBounds = [] {
  std::array<double, kPullSizeBoundCount> out{};
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<double>(std::uint64_t{1} << (20 + 2 * i));
  return out;
}();
const std::array<double, kThroughputBoundCount> kThroughputBounds = [] {
  std::array<double, kThroughputBoundCount> out{};
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<double>(std::uint64_t{65536} << i);
  return out;
}();

std::size_t throughput_bucket(double bytes_per_second) {
  std::size_t i = 0;
  while (i < kThroughputBoundCount && bytes_per_second > kThroughputBounds[i]) ++i;
  return i;
}

CollectedFamily family(std::string name, std::string help, prometheus::MetricType type) {
  CollectedFamily f;
  f.family.name = std::move(name);
  f.family.help = std::move(help);
  f.family.type = type;
  return f;
}

// ---- repository label bounding ----

constexpr std::string_view kOtherRepository = "__other__";
constexpr std::uint32_t kOtherSlot = 0;  // named repositories get slots 1..N

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

  void add(const RepositoryCounters& other) {
    pushes += other.pushes;
    pulls += other.pulls;
    redirects += other.redirects;
    keep_latest(push_exemplar, other.push_exemplar);
    keep_latest(pull_exemplar, other.pull_exemplar);
    for (std::size_t d = 0; d < kDirectionCount; ++d) {
      bytes[d] += other.bytes[d];
      keep_latest(byte_exemplars[d], other.byte_exemplars[d]);
    }
    seen |= other.seen;
  }
};

// What a scrape needs to name repository slots.
struct RepositoryLabels {
  bool labelled = true;
  std::vector<std::string> names;  // slot s > 0 is names[s - 1]

  // Empty when the slot has no name yet (cannot happen when the names were
  // read after the shards were merged).
  std::optional<std::string_view> name_of(std::size_t slot) const {
    if (slot == kOtherSlot) return kOtherRepository;
    if (slot - 1 < names.size()) return names[slot - 1];
    return std::nullopt;
  }
};

bool is_upload_handler(Handler h) { return h == Handler::blob_upload || h == Handler::blob_upload_chunk; }

// Whether the exchange counts toward a per-repository family (so whether its
// repository needs a slot at all).
bool counts_per_repository(const Exchange& e) {
  if (e.handler == Handler::manifest)
    return (e.method == Method::put && e.status == 201) || (e.method == Method::get && e.status == 200);
  return is_upload_handler(e.handler) || (e.handler == Handler::blob && e.method == Method::get);
}

// Bytes per second of `bytes` moved between two time points, if it is to be
// observed: at least 1 MiB, both ends known, a positive duration.
std::optional<double> rate_of(std::uint64_t bytes, Clock::time_point start, Clock::time_point end) {
  if (bytes < kThroughputMinBytes || !happened(start) || !happened(end) || end <= start) return std::nullopt;
  auto seconds = std::chrono::duration<double>(end - start).count();
  return static_cast<double>(bytes) / seconds;
}

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

// All numbers of one shard, or the merge of several.
struct MetricsShard::Snapshot {
  std::array<std::int64_t, kHandlerCount> in_flight{};
  CodeCounters requests;                                  // [code][handler, method]
  std::array<DurationBuckets, kHandlerMethodCount> duration{};  // [handler, method]
  std::array<NativeDurationBuckets, kHandlerMethodCount> native_duration{};  // [handler, method]
  std::array<SizeBuckets, kHandlerCount> request_size{};
  std::array<SizeBuckets, kHandlerCount> response_size{};
  // regmeter_* families.
  std::array<UpstreamHeaderBuckets, kHandlerMethodCount> upstream_header{};  // [handler, method]
  ConnectBuckets upstream_connect;
  ConnectBuckets upstream_queue;  // regmeter_upstream_queue_seconds: same bounds, 0.1 ms .. 10 s
  std::array<ThroughputBuckets, kDirectionCount> throughput{};               // [direction]
  std::array<SessionDurationBuckets, kSessionOutcomeCount> session_duration{};  // [outcome]
  std::array<SessionSizeBuckets, kSessionOutcomeCount> session_size{};          // [outcome]
  std::array<std::uint64_t, kHandlerCount> auth_challenges{};
  std::array<Exemplar, kHandlerCount> auth_challenge_exemplars{};
  std::array<std::uint64_t, kRejectReasonCount> rejected{};  // [reason]
  std::vector<RepositoryCounters> repositories;  // [slot]; grows to at most max_repositories + 1
  MeteringCounters metering;  // error codes, client families (issue 16)
  std::array<PullDurationBuckets, kPullOutcomeCount> pull_duration{};  // [outcome]
  std::array<PullSizeBuckets, kPullOutcomeCount> pull_size{};          // [outcome]

  // `repository_slot` matters only when counts_per_repository(e).
  // `source` (may be null) names the request in the exemplars it writes.
  void record(const Exchange& e, std::uint32_t repository_slot, const ExemplarSource* source) {
    auto h = static_cast<std::size_t>(e.handler);
    auto series = series_index(e.handler, e.method);
    --in_flight[h];
    requests.count(code_of(e.status), series, source);
    auto ns = nanoseconds(e.finished - e.started);
    auto seconds = static_cast<double>(ns) / kNsPerSecond;
    auto bucket = duration_bucket(ns);
    duration[series].observe(bucket, static_cast<std::uint64_t>(ns), seconds, source);
    native_duration[series].observe(bucket, static_cast<std::uint64_t>(ns), seconds, source);
    auto request_bytes = static_cast<double>(e.request_body_bytes), response_bytes = static_cast<double>(e.response_body_bytes);
    request_size[h].observe(size_bucket(e.request_body_bytes), e.request_body_bytes, request_bytes, source);
    response_size[h].observe(size_bucket(e.response_body_bytes), e.response_body_bytes, response_bytes, source);
    if (e.needed_upstream_connection) {
      auto queue_ns = nanoseconds(e.upstream_queue_wait);
      upstream_queue.observe(linear_bucket(kConnectBoundsNs, queue_ns), static_cast<std::uint64_t>(queue_ns),
                             static_cast<double>(queue_ns) / kNsPerSecond, source);
    }

    if (happened(e.upstream_headers)) {
      auto header_ns = nanoseconds(e.upstream_headers - e.started);
      upstream_header[series].observe(linear_bucket(kUpstreamHeaderBoundsNs, header_ns),
                                      static_cast<std::uint64_t>(header_ns),
                                      static_cast<double>(header_ns) / kNsPerSecond, source);
    }
    if (e.status == 401) {
      ++auth_challenges[h];
      record_exemplar(auth_challenge_exemplars[h], source, 1.0);
    }
    metering.record(e);

    bool upload_body = (e.handler == Handler::blob_upload_chunk && (e.method == Method::patch || e.method == Method::put)) ||
                       (e.handler == Handler::blob_upload && e.method == Method::post);
    if (upload_body)
      if (auto rate = rate_of(e.request_body_bytes, e.request_body_start, e.request_body_end))
        observe_throughput(Direction::upload, *rate, source);
    bool blob_download = e.handler == Handler::blob && e.method == Method::get;
    if (blob_download && (e.status == 200 || e.status == 206))
      if (auto rate = rate_of(e.response_body_bytes, e.response_body_start, e.finished))
        observe_throughput(Direction::download, *rate, source);

    if (!counts_per_repository(e)) return;
    if (repositories.size() <= repository_slot) repositories.resize(repository_slot + 1);
    auto& repo = repositories[repository_slot];
    if (e.handler == Handler::manifest) {
      if (e.method == Method::put) {
        ++repo.pushes;
        repo.seen |= RepositoryCounters::kPush;
        record_exemplar(repo.push_exemplar, source, 1.0);
      } else {
        ++repo.pulls;
        repo.seen |= RepositoryCounters::kPull;
        record_exemplar(repo.pull_exemplar, source, 1.0);
      }
    } else if (is_upload_handler(e.handler)) {
      repo.bytes[static_cast<std::size_t>(Direction::upload)] += e.request_body_bytes;
      repo.seen |= RepositoryCounters::kUpload;
      record_exemplar(repo.byte_exemplars[0], source, request_bytes);
    } else {  // blob GET
      repo.bytes[static_cast<std::size_t>(Direction::download)] += e.response_body_bytes;
      repo.seen |= RepositoryCounters::kDownload;
      record_exemplar(repo.byte_exemplars[1], source, response_bytes);
      if (e.status == 302 || e.status == 303 || e.status == 307 || e.status == 308) {
        ++repo.redirects;
        repo.seen |= RepositoryCounters::kRedirect;
      }
    }
  }

  void observe_throughput(Direction d, double bytes_per_second, const ExemplarSource* source) {
    throughput[static_cast<std::size_t>(d)].observe(throughput_bucket(bytes_per_second), bytes_per_second,
                                                    bytes_per_second, source);
  }

  void record_connect(Clock::duration connect_time) {
    auto ns = nanoseconds(connect_time);
    upstream_connect.observe(linear_bucket(kConnectBoundsNs, ns), static_cast<std::uint64_t>(ns),
                             static_cast<double>(ns) / kNsPerSecond);
  }

  void record_session(SessionOutcome outcome, double seconds, std::uint64_t bytes) {
    auto o = static_cast<std::size_t>(outcome);
    if (o >= kSessionOutcomeCount) return;
    // Whole nanoseconds keep the sum exact; NaN and negatives count as 0, and
    // anything past ~292 years is clamped rather than overflowing.
    std::int64_t ns = 0;
    if (seconds > 0)
      ns = seconds >= 9.2e9 ? std::numeric_limits<std::int64_t>::max() / 2
                            : static_cast<std::int64_t>(seconds * kNsPerSecond + 0.5);
    session_duration[o].observe(linear_bucket(kSessionDurationBoundsNs, ns), static_cast<std::uint64_t>(ns),
                                static_cast<double>(ns) / kNsPerSecond);
    session_size[o].observe(session_size_bucket(bytes), bytes, static_cast<double>(bytes));
  }

  void add(const Snapshot& other) {
    for (std::size_t h = 0; h < kHandlerCount; ++h) {
      in_flight[h] += other.in_flight[h];
      request_size[h].add(other.request_size[h]);
      response_size[h].add(other.response_size[h]);
      auth_challenges[h] += other.auth_challenges[h];
      keep_latest(auth_challenge_exemplars[h], other.auth_challenge_exemplars[h]);
    }
    for (std::size_t s = 0; s < kHandlerMethodCount; ++s) {
      duration[s].add(other.duration[s]);
      native_duration[s].add(other.native_duration[s]);
      upstream_header[s].add(other.upstream_header[s]);
    }
    requests.add(other.requests);
    upstream_connect.add(other.upstream_connect);
    upstream_queue.add(other.upstream_queue);
    for (std::size_t d = 0; d < kDirectionCount; ++d) throughput[d].add(other.throughput[d]);
    for (std::size_t o = 0; o < kSessionOutcomeCount; ++o) {
      session_duration[o].add(other.session_duration[o]);
      session_size[o].add(other.session_size[o]);
    }
    for (std::size_t r = 0; r < kRejectReasonCount; ++r) rejected[r] += other.rejected[r];
    metering.add(other.metering);
    for (std::size_t o = 0; o < kPullOutcomeCount; ++o) {
      pull_duration[o].add(other.pull_duration[o]);
      pull_size[o].add(other.pull_size[o]);
    }
    if (repositories.size() < other.repositories.size()) repositories.resize(other.repositories.size());
    for (std::size_t slot = 0; slot < other.repositories.size(); ++slot) repositories[slot].add(other.repositories[slot]);
  }

  // Like distribution: the in-flight gauge exists for every handler from the
  // start; counter and histogram series appear once observed.
  std::vector<CollectedFamily> families(const RepositoryLabels& repository_labels) const {
    using prometheus::MetricType;
    auto handler_of = [](std::size_t h) { return handler_name(static_cast<Handler>(h)); };
    auto method_of = [](std::size_t s) { return method_name(static_cast<Method>(s % kSeriesPerHandler)); };

    auto gauge = family("registry_http_in_flight_requests", "The in-flight HTTP requests", MetricType::Gauge);
    for (std::size_t h = 0; h < kHandlerCount; ++h) {
      prometheus::ClientMetric m;
      m.label = {label("handler", handler_of(h))};
      m.gauge.value = static_cast<double>(in_flight[h]);
      gauge.family.metric.push_back(std::move(m));
    }

    auto total = family("registry_http_requests_total", "Total number of HTTP requests made.", MetricType::Counter);
    for (const auto& row : requests.rows()) {
      auto code = std::to_string(row.code);
      for (std::size_t s = 0; s < row.counts.size(); ++s) {
        if (row.counts[s] == 0) continue;
        add_counter(total,
                    {label("code", code), label("handler", handler_of(s / kSeriesPerHandler)), label("method", method_of(s))},
                    static_cast<double>(row.counts[s]), &row.exemplars[s]);
      }
    }

    auto latency = family("registry_http_request_duration_seconds", "The HTTP request latencies in seconds.",
                          MetricType::Histogram);
    for (std::size_t s = 0; s < kHandlerMethodCount; ++s) {
      if (duration[s].count() == 0) continue;
      add_histogram(latency, {label("handler", handler_of(s / kSeriesPerHandler)), label("method", method_of(s))},
                    duration[s], kDurationBoundsSeconds, kNsPerSecond);
    }
    auto native_latency = family("regmeter_http_request_duration_seconds",
                                 "The HTTP request latencies in seconds, with native buckets: the twin of "
                                 "registry_http_request_duration_seconds.",
                                 MetricType::Histogram);
    for (std::size_t s = 0; s < kHandlerMethodCount; ++s) {
      if (native_duration[s].count() == 0) continue;
      add_histogram(native_latency, {label("handler", handler_of(s / kSeriesPerHandler)), label("method", method_of(s))},
                    native_duration[s], kDurationBoundsSeconds, kNsPerSecond);
    }

    auto request_bytes = family("registry_http_request_size_bytes", "The HTTP request sizes in bytes.",
                                MetricType::Histogram);
    auto response_bytes = family("registry_http_response_size_bytes", "The HTTP response sizes in bytes.",
                                 MetricType::Histogram);
    for (std::size_t h = 0; h < kHandlerCount; ++h) {
      if (request_size[h].count() != 0)
        add_histogram(request_bytes, {label("handler", handler_of(h))}, request_size[h], kSizeBounds, 1.0);
      if (response_size[h].count() != 0)
        add_histogram(response_bytes, {label("handler", handler_of(h))}, response_size[h], kSizeBounds, 1.0);
    }

    auto upstream_headers = family("regmeter_upstream_header_seconds",
                                   "Seconds from the first byte of a request to the arrival of the final response "
                                   "head from the upstream, sending of the request body included.",
                                   MetricType::Histogram);
    for (std::size_t s = 0; s < kHandlerMethodCount; ++s) {
      if (upstream_header[s].count() == 0) continue;
      add_histogram(upstream_headers, {label("handler", handler_of(s / kSeriesPerHandler)), label("method", method_of(s))},
                    upstream_header[s], kUpstreamHeaderBoundsSeconds, kNsPerSecond);
    }

    auto connect = family("regmeter_upstream_connect_seconds",
                          "Seconds to establish a new connection to the upstream.", MetricType::Histogram);
    if (upstream_connect.count() != 0)
      add_histogram(connect, {}, upstream_connect, kConnectBoundsSeconds, kNsPerSecond);
    auto queue = family("regmeter_upstream_queue_seconds",
                        "Seconds a request waited for an upstream connection under --upstream-max-connections "
                        "(0 when none waited), for every request that needed one.",
                        MetricType::Histogram);
    if (upstream_queue.count() != 0) add_histogram(queue, {}, upstream_queue, kConnectBoundsSeconds, kNsPerSecond);

    auto rate = family("regmeter_blob_throughput_bytes_per_second",
                       "Body transfer rate of blob uploads and downloads of at least 1 MiB, in bytes per second.",
                       MetricType::Histogram);
    for (std::size_t d = 0; d < kDirectionCount; ++d)
      if (throughput[d].count() != 0)
        add_histogram(rate, {label("direction", direction_name(d))}, throughput[d], kThroughputBounds, 1.0);

    auto session_seconds = family("regmeter_upload_session_duration_seconds",
                                  "Seconds from the first byte of the request that opened a blob upload session to "
                                  "the last byte of the response that ended it, by outcome.",
                                  MetricType::Histogram);
    auto session_bytes = family("regmeter_upload_session_size_bytes",
                                "Body bytes carried by all requests of a blob upload session, by outcome.",
                                MetricType::Histogram);
    for (std::size_t o = 0; o < kSessionOutcomeCount; ++o) {
      auto outcome = outcome_name(static_cast<SessionOutcome>(o));
      if (session_duration[o].count() != 0)
        add_histogram(session_seconds, {label("outcome", outcome)}, session_duration[o], kSessionDurationBoundsSeconds,
                      kNsPerSecond);
      if (session_size[o].count() != 0)
        add_histogram(session_bytes, {label("outcome", outcome)}, session_size[o], kSessionSizeBounds, 1.0);
    }

    auto pull_seconds = family("regmeter_image_pull_duration_seconds",
                               "Seconds from the first manifest request of a whole image pull to the last blob byte "
                               "delivered (redirected: to the last redirect answer), by outcome.",
                               MetricType::Histogram);
    auto pull_bytes = family("regmeter_image_pull_size_bytes",
                             "Blob body bytes a whole image pull delivered through the proxy, by outcome.",
                             MetricType::Histogram);
    for (std::size_t o = 0; o < kPullOutcomeCount; ++o) {
      auto outcome = pull_outcome_name(static_cast<PullOutcome>(o));
      if (pull_duration[o].count() != 0)
        add_histogram(pull_seconds, {label("outcome", outcome)}, pull_duration[o], kPullDurationBoundsSeconds,
                      kNsPerSecond);
      if (pull_size[o].count() != 0)
        add_histogram(pull_bytes, {label("outcome", outcome)}, pull_size[o], kPullSizeBounds, 1.0);
    }

    auto challenges = family("regmeter_auth_challenges_total",
                             "Responses with status 401 (authentication challenges), by handler.", MetricType::Counter);
    for (std::size_t h = 0; h < kHandlerCount; ++h) {
      if (auth_challenges[h] == 0) continue;
      add_counter(challenges, {label("handler", handler_of(h))}, static_cast<double>(auth_challenges[h]),
                  &auth_challenge_exemplars[h]);
    }

    // Every reason from the start (at 0), so rate() and alerts see the first one.
    auto rejections = family("regmeter_rejected_connections_total",
                             "Connections refused before a request on them could be parsed (not counted in "
                             "registry_http_*), by reason.",
                             MetricType::Counter);
    for (std::size_t r = 0; r < kRejectReasonCount; ++r) {
      prometheus::ClientMetric m;
      m.label = {label("reason", reject_reason_name(static_cast<RejectReason>(r)))};
      m.counter.value = static_cast<double>(rejected[r]);
      rejections.family.metric.push_back(std::move(m));
    }

    auto pushes = family("regmeter_image_pushes_total", "Manifest PUTs answered 201 (image pushes), by repository.",
                         MetricType::Counter);
    auto pulls = family("regmeter_image_pulls_total",
                        "Manifest GETs answered 200 (image pulls; a HEAD is not a pull), by repository.",
                        MetricType::Counter);
    auto redirects = family("regmeter_blob_redirects_total",
                            "Blob GETs answered with a redirect (302/303/307/308: object storage serves the bytes, "
                            "not the proxy), by repository.",
                            MetricType::Counter);
    auto blob_bytes = family("regmeter_blob_bytes_total",
                             "Blob body bytes moved: upload request bodies and blob GET response bodies, by "
                             "repository and direction.",
                             MetricType::Counter);
    for (std::size_t slot = 0; slot < repositories.size(); ++slot) {
      const auto& repo = repositories[slot];
      if (repo.seen == 0) continue;
      std::vector<Label> repo_label;
      if (repository_labels.labelled) {
        auto name = repository_labels.name_of(slot);
        if (!name) continue;
        repo_label.push_back(label("repository", *name));
      }
      auto counter = [&](CollectedFamily& f, std::vector<Label> labels, std::uint64_t value, const Exemplar& ex) {
        add_counter(f, std::move(labels), static_cast<double>(value), &ex);
      };
      if (repo.seen & RepositoryCounters::kPush) counter(pushes, repo_label, repo.pushes, repo.push_exemplar);
      if (repo.seen & RepositoryCounters::kPull) counter(pulls, repo_label, repo.pulls, repo.pull_exemplar);
      if (repo.seen & RepositoryCounters::kRedirect)
        add_counter(redirects, repo_label, static_cast<double>(repo.redirects), nullptr);
      for (std::size_t d = 0; d < kDirectionCount; ++d) {
        auto bit = d == 0 ? RepositoryCounters::kUpload : RepositoryCounters::kDownload;
        if (!(repo.seen & bit)) continue;
        auto labels = repo_label;
        labels.insert(labels.begin(), label("direction", direction_name(d)));  // label names in order
        counter(blob_bytes, std::move(labels), repo.bytes[d], repo.byte_exemplars[d]);
      }
    }

    std::vector<CollectedFamily> out;
    for (auto* f : {&gauge, &total, &latency, &request_bytes, &response_bytes, &upstream_headers, &connect, &queue, &rate,
                    &session_seconds, &session_bytes, &challenges, &rejections, &pushes, &pulls, &blob_bytes,
                    &native_latency, &pull_seconds, &pull_bytes, &redirects}) {
      if (f->family.metric.empty()) continue;  // an empty family is a HELP/TYPE with no samples
      sort_series(*f);
      out.push_back(std::move(*f));
    }
    metering.families(out);
    return out;
  }
};

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
  ++impl_->data.in_flight[static_cast<std::size_t>(handler)];
  ++impl_->started;
}

Metrics::Activity MetricsShard::activity() const {
  std::lock_guard lock(impl_->mutex);
  Metrics::Activity out;
  out.started = impl_->started;
  for (auto n : impl_->data.in_flight) out.in_flight += n;
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
  if (auto r = static_cast<std::size_t>(reason); r < kRejectReasonCount) ++impl_->data.rejected[r];
}

void MetricsShard::image_pull_ended(const EndedPull& pull) {
  std::lock_guard lock(impl_->mutex);
  auto o = static_cast<std::size_t>(pull.outcome);
  if (o >= kPullOutcomeCount) return;
  std::int64_t ns = 0;
  if (pull.seconds > 0)
    ns = pull.seconds >= 9.2e9 ? std::numeric_limits<std::int64_t>::max() / 2
                               : static_cast<std::int64_t>(pull.seconds * kNsPerSecond + 0.5);
  impl_->data.pull_duration[o].observe(linear_bucket(kPullDurationBoundsNs, ns), static_cast<std::uint64_t>(ns),
                                       static_cast<double>(ns) / kNsPerSecond);
  impl_->data.pull_size[o].observe(pull_size_bucket(pull.bytes), pull.bytes, static_cast<double>(pull.bytes));
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
