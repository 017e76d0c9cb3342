// Recording into a shard (MetricsShard, its Snapshot), and merging
// snapshots. Plain integer arithmetic under the shard's mutex.
#include "core/metrics_snapshot.h"

#include <algorithm>
#include <bit>
#include <chrono>
#include <limits>
#include <optional>
#include <tuple>
#include <type_traits>
#include <vector>

namespace regmeter {
namespace {

using family_detail::kNsPerSecond;

// regmeter_blob_throughput_bytes_per_second is observed only for bodies of
// at least 1 MiB: below that, the rate measures latency, not bandwidth.
constexpr std::uint64_t kThroughputMinBytes = std::uint64_t{1} << 20;

// Most observations are small, so a linear scan usually stops at the first
// bound. The declaration is a template argument so that the bounds are
// constants in the loop, as they were when each family had its own array.
template <const FamilyDeclaration& D, typename Value>
std::size_t bucket_of(Value v) {
  constexpr std::size_t kCount = D.bounds.size();
  std::size_t i = 0;
  while (i < kCount && v > static_cast<Value>(D.bounds[i])) ++i;
  return i;
}

// A time span in nanoseconds, never negative.
std::int64_t nanoseconds(Clock::duration d) {
  return std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
}

// Whole nanoseconds keep the sum exact; NaN and negatives count as 0, and
// anything past ~292 years is clamped rather than overflowing.
std::int64_t nanoseconds(double seconds) {
  if (!(seconds > 0)) return 0;
  return seconds >= 9.2e9 ? std::numeric_limits<std::int64_t>::max() / 2
                          : static_cast<std::int64_t>(seconds * kNsPerSecond + 0.5);
}

// Observes a span (ns) in cell `i` of a seconds histogram family.
template <typename Family>
void observe_ns(Family& family, std::size_t i, std::int64_t ns, const ExemplarSource* source = nullptr) {
  family[i].observe(bucket_of<Family::kDeclaration>(ns), static_cast<std::uint64_t>(ns),
                    static_cast<double>(ns) / kNsPerSecond, source);
}

bool happened(Clock::time_point t) { return t != Clock::time_point{}; }

// The size bounds are powers of two (metric_families.h), so the bucket is a
// bit count: bytes <= 2^n exactly when bit_width(bytes - 1) <= n.
// Smallest k with bytes <= 1024 << k.
std::size_t size_bucket(std::uint64_t bytes) {
  if (bytes <= 1024) return 0;
  return std::min<std::size_t>(std::bit_width(bytes - 1) - 10, kSizeBounds.size());
}
// Smallest k with bytes <= 1024 << 2k, i.e. ceil((bit_width(bytes - 1) - 10) / 2).
std::size_t session_size_bucket(std::uint64_t bytes) {
  if (bytes <= 1024) return 0;
  return std::min<std::size_t>((std::bit_width(bytes - 1) - 9) / 2, kSessionSizeBounds.size());
}
// Smallest k with bytes <= 1 MiB << 2k.
std::size_t pull_size_bucket(std::uint64_t bytes) {
  if (bytes <= (std::uint64_t{1} << 20)) return 0;
  return std::min<std::size_t>((std::bit_width(bytes - 1) - 19) / 2, kPullSizeBounds.size());
}

std::size_t series_index(Handler handler, Method method) {
  return static_cast<std::size_t>(handler) * kMethodCount + static_cast<std::size_t>(method);
}

// The `code` label. Anything that is not a status line the client received
// (0, or garbage a caller should never pass) is "the client went away".
int code_of(int status) { return status >= 100 && status <= 999 ? status : kClientClosedStatus; }

// Bytes per second of `bytes` moved between two time points, if it is to be
// observed: at least 1 MiB, both ends known, a positive duration.
std::optional<double> rate_of(std::uint64_t bytes, Clock::time_point start, Clock::time_point end) {
  if (bytes < kThroughputMinBytes || !happened(start) || !happened(end) || end <= start) return std::nullopt;
  auto seconds = std::chrono::duration<double>(end - start).count();
  return static_cast<double>(bytes) / seconds;
}

template <typename Family>
void observe_throughput(Family& family, Direction d, double bytes_per_second, const ExemplarSource* source) {
  family[static_cast<std::size_t>(d)].observe(bucket_of<Family::kDeclaration>(bytes_per_second), bytes_per_second,
                                              bytes_per_second, source);
}

// Internal linkage and one caller: inlined into record(), as on the hot path
// it always was.
void record_repository(std::vector<RepositoryCounters>& repositories, const Exchange& e, std::uint32_t slot,
                       const ExemplarSource* source) {
  if (repositories.size() <= slot) repositories.resize(slot + 1);
  auto& repo = repositories[slot];
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
    record_exemplar(repo.byte_exemplars[0], source, static_cast<double>(e.request_body_bytes));
  } else {  // blob GET
    repo.bytes[static_cast<std::size_t>(Direction::download)] += e.response_body_bytes;
    repo.seen |= RepositoryCounters::kDownload;
    record_exemplar(repo.byte_exemplars[1], source, static_cast<double>(e.response_body_bytes));
    if (e.status == 302 || e.status == 303 || e.status == 307 || e.status == 308) {
      ++repo.redirects;
      repo.seen |= RepositoryCounters::kRedirect;
    }
  }
}

}  // namespace

void MetricsShard::Snapshot::record(const Exchange& e, std::uint32_t repository_slot, const ExemplarSource* source) {
  auto h = static_cast<std::size_t>(e.handler);
  auto series = series_index(e.handler, e.method);
  --get<families::kInFlight>()[h];
  requests.count(code_of(e.status), series, source);
  auto ns = nanoseconds(e.finished - e.started);
  auto seconds = static_cast<double>(ns) / kNsPerSecond;
  auto bucket = bucket_of<families::kRequestDuration>(ns);
  get<families::kRequestDuration>()[series].observe(bucket, static_cast<std::uint64_t>(ns), seconds, source);
  get<families::kNativeRequestDuration>()[series].observe(bucket, static_cast<std::uint64_t>(ns), seconds, source);
  auto request_bytes = static_cast<double>(e.request_body_bytes);
  auto response_bytes = static_cast<double>(e.response_body_bytes);
  get<families::kRequestSize>()[h].observe(size_bucket(e.request_body_bytes), e.request_body_bytes, request_bytes,
                                           source);
  get<families::kResponseSize>()[h].observe(size_bucket(e.response_body_bytes), e.response_body_bytes,
                                            response_bytes, source);
  if (e.needed_upstream_connection)
    observe_ns(get<families::kUpstreamQueue>(), 0, nanoseconds(e.upstream_queue_wait), source);
  if (happened(e.upstream_headers))
    observe_ns(get<families::kUpstreamHeader>(), series, nanoseconds(e.upstream_headers - e.started), source);
  if (e.status == 401) get<families::kAuthChallenges>()[h].count(source);
  metering.record(e);

  bool upload_body = (e.handler == Handler::blob_upload_chunk && (e.method == Method::patch || e.method == Method::put)) ||
                     (e.handler == Handler::blob_upload && e.method == Method::post);
  if (upload_body)
    if (auto rate = rate_of(e.request_body_bytes, e.request_body_start, e.request_body_end))
      observe_throughput(get<families::kBlobThroughput>(), Direction::upload, *rate, source);
  bool blob_download = e.handler == Handler::blob && e.method == Method::get;
  if (blob_download && (e.status == 200 || e.status == 206))
    if (auto rate = rate_of(e.response_body_bytes, e.response_body_start, e.finished))
      observe_throughput(get<families::kBlobThroughput>(), Direction::download, *rate, source);

  if (counts_per_repository(e)) record_repository(repositories, e, repository_slot, source);
}

void MetricsShard::Snapshot::record_connect(Clock::duration connect_time) {
  observe_ns(get<families::kUpstreamConnect>(), 0, nanoseconds(connect_time));
}

void MetricsShard::Snapshot::record_session(SessionOutcome outcome, double seconds, std::uint64_t bytes) {
  auto o = static_cast<std::size_t>(outcome);
  if (o >= kSessionOutcomeCount) return;
  observe_ns(get<families::kUploadSessionDuration>(), o, nanoseconds(seconds));
  get<families::kUploadSessionSize>()[o].observe(session_size_bucket(bytes), bytes, static_cast<double>(bytes));
}

void MetricsShard::Snapshot::record_rejection(RejectReason reason) {
  if (auto r = static_cast<std::size_t>(reason); r < kRejectReasonCount) ++get<families::kRejectedConnections>()[r];
}

void MetricsShard::Snapshot::record_pull(const EndedPull& pull) {
  auto o = static_cast<std::size_t>(pull.outcome);
  if (o >= kPullOutcomeCount) return;
  observe_ns(get<families::kImagePullDuration>(), o, nanoseconds(pull.seconds));
  get<families::kImagePullSize>()[o].observe(pull_size_bucket(pull.bytes), pull.bytes, static_cast<double>(pull.bytes));
}

void MetricsShard::Snapshot::add(const Snapshot& other) {
  std::apply([&](auto&... mine) { (mine.add(std::get<std::remove_reference_t<decltype(mine)>>(other.cells)), ...); },
             cells);
  requests.add(other.requests);
  metering.add(other.metering);
  if (repositories.size() < other.repositories.size()) repositories.resize(other.repositories.size());
  for (std::size_t slot = 0; slot < other.repositories.size(); ++slot) repositories[slot].add(other.repositories[slot]);
}

// ---- MetricsShard: recording is here, beside Snapshot::record, so that it
// inlines into the per-request call ----

MetricsShard::MetricsShard() : impl_(std::make_unique<Impl>()) {}
MetricsShard::~MetricsShard() = default;

void MetricsShard::request_started(Handler handler) {
  std::lock_guard lock(impl_->mutex);
  ++impl_->data.get<families::kInFlight>()[static_cast<std::size_t>(handler)];
  ++impl_->started;
}

Metrics::Activity MetricsShard::activity() const {
  std::lock_guard lock(impl_->mutex);
  Metrics::Activity out;
  out.started = impl_->started;
  for (auto n : impl_->data.get<families::kInFlight>().cells) out.in_flight += n;
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

// Like distribution: the in-flight gauge exists for every handler from the
// start; counter and histogram series appear once observed.
std::vector<CollectedFamily> MetricsShard::Snapshot::families(const RepositoryLabels& repository_labels) const {
  std::vector<CollectedFamily> out;
  std::apply([&](const auto&... family) { (family.render(out), ...); }, cells);
  render_requests(requests, out);
  render_repositories(repositories, repository_labels, out);
  metering.families(out);
  return out;
}

}  // namespace regmeter
