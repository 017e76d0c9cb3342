// Per-request numbers, recorded into per-thread shards and merged on scrape.
//
// Recording is plain integer arithmetic under the shard's own mutex, which
// only its worker thread and a scrape ever take. A scrape merges every shard
// into one Snapshot, turns it into prometheus-cpp MetricFamily values and lets
// prometheus::TextSerializer write the exposition.
//
// Adding a family: a member in Snapshot, a line in Snapshot::record (or a new
// recording method on MetricsShard), one in Snapshot::add, and its rendering
// in Snapshot::families.
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
#include <charconv>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

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

// A classic histogram. Integer observations (nanoseconds, bytes) keep sums
// exact; throughput, a ratio, sums in double. Counts are per bucket, not
// cumulative; the last one is +Inf.
template <std::size_t N, typename Sum = std::uint64_t>
struct Buckets {
  std::array<std::uint64_t, N + 1> counts{};
  Sum sum = 0;

  void observe(std::size_t bucket, Sum value) {
    ++counts[bucket];
    sum += value;
  }
  void add(const Buckets& other) {
    for (std::size_t i = 0; i < counts.size(); ++i) counts[i] += other.counts[i];
    sum += other.sum;
  }
  std::uint64_t count() const {
    std::uint64_t total = 0;
    for (auto c : counts) total += c;
    return total;
  }
};
using DurationBuckets = Buckets<kDurationBoundsNs.size()>;
using SizeBuckets = Buckets<kSizeBoundCount>;
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
  };

  void add(int code, std::size_t series, std::uint64_t n) {
    auto& slot = slot_of_code_[static_cast<std::size_t>(code)];
    if (slot == 0) {
      rows_.push_back(Row{code, {}});
      slot = static_cast<std::uint16_t>(rows_.size());
    }
    rows_[slot - 1].counts[series] += n;
  }
  void add(const CodeCounters& other) {
    for (const auto& row : other.rows_)
      for (std::size_t s = 0; s < row.counts.size(); ++s)
        if (row.counts[s] != 0) add(row.code, s, row.counts[s]);
  }
  const std::vector<Row>& rows() const { return rows_; }

 private:
  std::array<std::uint16_t, 1000> slot_of_code_{};  // row index + 1; 0 = none yet
  std::vector<Row> rows_;
};

using Label = prometheus::ClientMetric::Label;

Label label(std::string_view name, std::string_view value) {
  return Label{std::string(name), std::string(value)};
}

template <std::size_t N, typename Sum>
prometheus::ClientMetric histogram_metric(std::vector<Label> labels, const Buckets<N, Sum>& buckets,
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
  return metric;
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

prometheus::MetricFamily family(std::string name, std::string help, prometheus::MetricType type) {
  prometheus::MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

// Go's exporter orders series by label values; label names are already in
// the same (alphabetical) order in every series of a family.
void sort_series(prometheus::MetricFamily& f) {
  std::sort(f.metric.begin(), f.metric.end(),
            [](const prometheus::ClientMetric& a, const prometheus::ClientMetric& b) { return a.label < b.label; });
}

// strconv.FormatFloat(v, 'g', -1, 64), which Go's text exposition uses: the
// shortest round-trip digits, in exponent form when the exponent is < -4 or
// >= 6 (so 1048576 is "1.048576e+06").
std::string go_float(double v) {
  std::array<char, 64> buf{};
  auto sci = std::to_chars(buf.data(), buf.data() + buf.size(), v, std::chars_format::scientific);
  std::string_view s(buf.data(), static_cast<std::size_t>(sci.ptr - buf.data()));
  int exponent = std::atoi(s.data() + s.find('e') + 1);
  if (exponent < -4 || exponent >= 6) return std::string(s);
  auto fixed = std::to_chars(buf.data(), buf.data() + buf.size(), v, std::chars_format::fixed);
  return std::string(buf.data(), fixed.ptr);
}

// In Prometheus 2.x `le` is an ordinary label: "1048576" and "1.048576e+06"
// are different series. prometheus-cpp prints the former, distribution the
// latter, so rewrite the bucket bounds to keep series identical across a
// switch. Label values never contain an unescaped quote, so `{le="` and
// `,le="` can only start an `le` label.
std::string with_go_style_le(const std::string& text) {
  std::string out;
  out.reserve(text.size() + text.size() / 16);
  std::size_t pos = 0;
  while (true) {
    auto hit = text.find("le=\"", pos);
    if (hit == std::string::npos) break;
    auto value_begin = hit + 4;
    auto value_end = text.find('"', value_begin);
    if (value_end == std::string::npos) break;
    out.append(text, pos, value_begin - pos);
    std::string_view value(text.data() + value_begin, value_end - value_begin);
    double bound = 0;
    auto parsed = std::from_chars(value.data(), value.data() + value.size(), bound);
    bool is_label = hit > 0 && (text[hit - 1] == '{' || text[hit - 1] == ',');
    if (is_label && parsed.ec == std::errc() && parsed.ptr == value.data() + value.size())
      out += go_float(bound);
    else
      out.append(value);
    pos = value_end;
  }
  out.append(text, pos, std::string::npos);
  return out;
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

  void add(const RepositoryCounters& other) {
    pushes += other.pushes;
    pulls += other.pulls;
    redirects += other.redirects;
    for (std::size_t d = 0; d < kDirectionCount; ++d) bytes[d] += other.bytes[d];
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
  std::array<SizeBuckets, kHandlerCount> request_size{};
  std::array<SizeBuckets, kHandlerCount> response_size{};
  // regmeter_* families.
  std::array<UpstreamHeaderBuckets, kHandlerMethodCount> upstream_header{};  // [handler, method]
  ConnectBuckets upstream_connect;
  std::array<ThroughputBuckets, kDirectionCount> throughput{};               // [direction]
  std::array<SessionDurationBuckets, kSessionOutcomeCount> session_duration{};  // [outcome]
  std::array<SessionSizeBuckets, kSessionOutcomeCount> session_size{};          // [outcome]
  std::array<std::uint64_t, kHandlerCount> auth_challenges{};
  std::array<std::uint64_t, kRejectReasonCount> rejected{};  // [reason]
  std::vector<RepositoryCounters> repositories;  // [slot]; grows to at most max_repositories + 1
  MeteringCounters metering;  // error codes, client families (issue 16)
  std::array<PullDurationBuckets, kPullOutcomeCount> pull_duration{};  // [outcome]
  std::array<PullSizeBuckets, kPullOutcomeCount> pull_size{};          // [outcome]

  // `repository_slot` matters only when counts_per_repository(e).
  void record(const Exchange& e, std::uint32_t repository_slot) {
    auto h = static_cast<std::size_t>(e.handler);
    auto series = series_index(e.handler, e.method);
    --in_flight[h];
    requests.add(code_of(e.status), series, 1);
    auto ns = nanoseconds(e.finished - e.started);
    duration[series].observe(duration_bucket(ns), static_cast<std::uint64_t>(ns));
    request_size[h].observe(size_bucket(e.request_body_bytes), e.request_body_bytes);
    response_size[h].observe(size_bucket(e.response_body_bytes), e.response_body_bytes);

    if (happened(e.upstream_headers)) {
      auto header_ns = nanoseconds(e.upstream_headers - e.started);
      upstream_header[series].observe(linear_bucket(kUpstreamHeaderBoundsNs, header_ns),
                                      static_cast<std::uint64_t>(header_ns));
    }
    if (e.status == 401) ++auth_challenges[h];
    metering.record(e);

    bool upload_body = (e.handler == Handler::blob_upload_chunk && (e.method == Method::patch || e.method == Method::put)) ||
                       (e.handler == Handler::blob_upload && e.method == Method::post);
    if (upload_body)
      if (auto rate = rate_of(e.request_body_bytes, e.request_body_start, e.request_body_end))
        observe_throughput(Direction::upload, *rate);
    bool blob_download = e.handler == Handler::blob && e.method == Method::get;
    if (blob_download && (e.status == 200 || e.status == 206))
      if (auto rate = rate_of(e.response_body_bytes, e.response_body_start, e.finished))
        observe_throughput(Direction::download, *rate);

    if (!counts_per_repository(e)) return;
    if (repositories.size() <= repository_slot) repositories.resize(repository_slot + 1);
    auto& repo = repositories[repository_slot];
    if (e.handler == Handler::manifest) {
      if (e.method == Method::put) {
        ++repo.pushes;
        repo.seen |= RepositoryCounters::kPush;
      } else {
        ++repo.pulls;
        repo.seen |= RepositoryCounters::kPull;
      }
    } else if (is_upload_handler(e.handler)) {
      repo.bytes[static_cast<std::size_t>(Direction::upload)] += e.request_body_bytes;
      repo.seen |= RepositoryCounters::kUpload;
    } else {  // blob GET
      repo.bytes[static_cast<std::size_t>(Direction::download)] += e.response_body_bytes;
      repo.seen |= RepositoryCounters::kDownload;
      if (e.status == 302 || e.status == 303 || e.status == 307 || e.status == 308) {
        ++repo.redirects;
        repo.seen |= RepositoryCounters::kRedirect;
      }
    }
  }

  void observe_throughput(Direction d, double bytes_per_second) {
    throughput[static_cast<std::size_t>(d)].observe(throughput_bucket(bytes_per_second), bytes_per_second);
  }

  void record_connect(Clock::duration connect_time) {
    auto ns = nanoseconds(connect_time);
    upstream_connect.observe(linear_bucket(kConnectBoundsNs, ns), static_cast<std::uint64_t>(ns));
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
    session_duration[o].observe(linear_bucket(kSessionDurationBoundsNs, ns), static_cast<std::uint64_t>(ns));
    session_size[o].observe(session_size_bucket(bytes), bytes);
  }

  void add(const Snapshot& other) {
    for (std::size_t h = 0; h < kHandlerCount; ++h) {
      in_flight[h] += other.in_flight[h];
      request_size[h].add(other.request_size[h]);
      response_size[h].add(other.response_size[h]);
      auth_challenges[h] += other.auth_challenges[h];
    }
    for (std::size_t s = 0; s < kHandlerMethodCount; ++s) {
      duration[s].add(other.duration[s]);
      upstream_header[s].add(other.upstream_header[s]);
    }
    requests.add(other.requests);
    upstream_connect.add(other.upstream_connect);
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
  std::vector<prometheus::MetricFamily> families(const RepositoryLabels& repository_labels) const {
    using prometheus::MetricType;
    auto handler_of = [](std::size_t h) { return handler_name(static_cast<Handler>(h)); };
    auto method_of = [](std::size_t s) { return method_name(static_cast<Method>(s % kSeriesPerHandler)); };

    auto gauge = family("registry_http_in_flight_requests", "The in-flight HTTP requests", MetricType::Gauge);
    for (std::size_t h = 0; h < kHandlerCount; ++h) {
      prometheus::ClientMetric m;
      m.label = {label("handler", handler_of(h))};
      m.gauge.value = static_cast<double>(in_flight[h]);
      gauge.metric.push_back(std::move(m));
    }

    auto total = family("registry_http_requests_total", "Total number of HTTP requests made.", MetricType::Counter);
    for (const auto& row : requests.rows()) {
      auto code = std::to_string(row.code);
      for (std::size_t s = 0; s < row.counts.size(); ++s) {
        if (row.counts[s] == 0) continue;
        prometheus::ClientMetric m;
        m.label = {label("code", code), label("handler", handler_of(s / kSeriesPerHandler)), label("method", method_of(s))};
        m.counter.value = static_cast<double>(row.counts[s]);
        total.metric.push_back(std::move(m));
      }
    }

    auto latency = family("registry_http_request_duration_seconds", "The HTTP request latencies in seconds.",
                          MetricType::Histogram);
    for (std::size_t s = 0; s < kHandlerMethodCount; ++s) {
      if (duration[s].count() == 0) continue;
      latency.metric.push_back(histogram_metric(
          {label("handler", handler_of(s / kSeriesPerHandler)), label("method", method_of(s))}, duration[s],
          kDurationBoundsSeconds, kNsPerSecond));
    }

    auto request_bytes = family("registry_http_request_size_bytes", "The HTTP request sizes in bytes.",
                                MetricType::Histogram);
    auto response_bytes = family("registry_http_response_size_bytes", "The HTTP response sizes in bytes.",
                                 MetricType::Histogram);
    for (std::size_t h = 0; h < kHandlerCount; ++h) {
      if (request_size[h].count() != 0)
        request_bytes.metric.push_back(
            histogram_metric({label("handler", handler_of(h))}, request_size[h], kSizeBounds, 1.0));
      if (response_size[h].count() != 0)
        response_bytes.metric.push_back(
            histogram_metric({label("handler", handler_of(h))}, response_size[h], kSizeBounds, 1.0));
    }

    auto upstream_headers = family("regmeter_upstream_header_seconds",
                                   "Seconds from the first byte of a request to the arrival of the final response "
                                   "head from the upstream, sending of the request body included.",
                                   MetricType::Histogram);
    for (std::size_t s = 0; s < kHandlerMethodCount; ++s) {
      if (upstream_header[s].count() == 0) continue;
      upstream_headers.metric.push_back(histogram_metric(
          {label("handler", handler_of(s / kSeriesPerHandler)), label("method", method_of(s))}, upstream_header[s],
          kUpstreamHeaderBoundsSeconds, kNsPerSecond));
    }

    auto connect = family("regmeter_upstream_connect_seconds",
                          "Seconds to establish a new connection to the upstream.", MetricType::Histogram);
    if (upstream_connect.count() != 0)
      connect.metric.push_back(histogram_metric({}, upstream_connect, kConnectBoundsSeconds, kNsPerSecond));

    auto rate = family("regmeter_blob_throughput_bytes_per_second",
                       "Body transfer rate of blob uploads and downloads of at least 1 MiB, in bytes per second.",
                       MetricType::Histogram);
    for (std::size_t d = 0; d < kDirectionCount; ++d)
      if (throughput[d].count() != 0)
        rate.metric.push_back(
            histogram_metric({label("direction", direction_name(d))}, throughput[d], kThroughputBounds, 1.0));

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
        session_seconds.metric.push_back(histogram_metric({label("outcome", outcome)}, session_duration[o],
                                                          kSessionDurationBoundsSeconds, kNsPerSecond));
      if (session_size[o].count() != 0)
        session_bytes.metric.push_back(
            histogram_metric({label("outcome", outcome)}, session_size[o], kSessionSizeBounds, 1.0));
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
        pull_seconds.metric.push_back(histogram_metric({label("outcome", outcome)}, pull_duration[o],
                                                       kPullDurationBoundsSeconds, kNsPerSecond));
      if (pull_size[o].count() != 0)
        pull_bytes.metric.push_back(histogram_metric({label("outcome", outcome)}, pull_size[o], kPullSizeBounds, 1.0));
    }

    auto challenges = family("regmeter_auth_challenges_total",
                             "Responses with status 401 (authentication challenges), by handler.", MetricType::Counter);
    for (std::size_t h = 0; h < kHandlerCount; ++h) {
      if (auth_challenges[h] == 0) continue;
      prometheus::ClientMetric m;
      m.label = {label("handler", handler_of(h))};
      m.counter.value = static_cast<double>(auth_challenges[h]);
      challenges.metric.push_back(std::move(m));
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
      rejections.metric.push_back(std::move(m));
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
      auto counter = [&](prometheus::MetricFamily& f, std::vector<Label> labels, std::uint64_t value) {
        prometheus::ClientMetric m;
        m.label = std::move(labels);
        m.counter.value = static_cast<double>(value);
        f.metric.push_back(std::move(m));
      };
      if (repo.seen & RepositoryCounters::kPush) counter(pushes, repo_label, repo.pushes);
      if (repo.seen & RepositoryCounters::kPull) counter(pulls, repo_label, repo.pulls);
      if (repo.seen & RepositoryCounters::kRedirect) counter(redirects, repo_label, repo.redirects);
      for (std::size_t d = 0; d < kDirectionCount; ++d) {
        auto bit = d == 0 ? RepositoryCounters::kUpload : RepositoryCounters::kDownload;
        if (!(repo.seen & bit)) continue;
        auto labels = repo_label;
        labels.insert(labels.begin(), label("direction", direction_name(d)));  // label names in order
        counter(blob_bytes, std::move(labels), repo.bytes[d]);
      }
    }

    std::vector<prometheus::MetricFamily> out;
    for (auto* f : {&gauge, &total, &latency, &request_bytes, &response_bytes, &upstream_headers, &connect, &rate,
                    &session_seconds, &session_bytes, &challenges, &rejections, &pushes, &pulls, &blob_bytes,
                    &pull_seconds, &pull_bytes, &redirects}) {
      if (f->metric.empty()) continue;  // an empty family is a HELP/TYPE with no samples
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
  impl_->data.record(exchange, slot);
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
  impl_->data.pull_duration[o].observe(linear_bucket(kPullDurationBoundsNs, ns), static_cast<std::uint64_t>(ns));
  impl_->data.pull_size[o].observe(pull_size_bucket(pull.bytes), pull.bytes);
}

void MetricsShard::merge_into(Snapshot& out) const {
  std::lock_guard lock(impl_->mutex);
  out.add(impl_->data);
}

// ---- Metrics ----

namespace {

// The HTTP families as a prometheus-cpp Collectable: each scrape merges the
// shards, locking one at a time so no worker waits for more than one copy.
class HttpCollector final : public prometheus::Collectable {
 public:
  HttpCollector(const std::vector<std::unique_ptr<MetricsShard>>& shards, const RepositoryTable& repositories)
      : shards_(shards), repositories_(repositories) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    auto merged = std::make_unique<MetricsShard::Snapshot>();  // ~30 KiB: keep it off the stack
    for (const auto& shard : shards_) shard->merge_into(*merged);
    // Read after the merge: every slot a shard used was named before it was used.
    RepositoryLabels labels{repositories_.labelled(), repositories_.names()};
    return merged->families(labels);
  }

 private:
  const std::vector<std::unique_ptr<MetricsShard>>& shards_;
  const RepositoryTable& repositories_;
};

}  // namespace

struct Metrics::Impl {
  explicit Impl(const MetricsOptions& options)
      : repositories(std::make_shared<RepositoryTable>(options.max_repositories)) {}

  std::shared_ptr<RepositoryTable> repositories;
  std::vector<std::unique_ptr<MetricsShard>> shards;
  HttpCollector http{shards, *repositories};
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

std::string Metrics::render_text() const {
  auto families = impl_->http.Collect();
  auto cold = impl_->registry.Collect();
  families.insert(families.end(), std::make_move_iterator(cold.begin()), std::make_move_iterator(cold.end()));
  std::stable_sort(families.begin(), families.end(),
                   [](const prometheus::MetricFamily& a, const prometheus::MetricFamily& b) { return a.name < b.name; });
  return with_go_style_le(prometheus::TextSerializer().Serialize(families));
}

}  // namespace regmeter
