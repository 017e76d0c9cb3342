// Every metric family regmeter exports, declared once: name, help, type,
// label names (in the order they are written) and, for a histogram, its
// classic bucket bounds. Recording, merging and rendering read these
// declarations; nothing else spells a family's name or help.
//
// The per-request families live in the metrics shards (core/metrics.h;
// their storage is listed in core/metrics_snapshot.h). The cold-path ones
// (counted rarely, from any thread) are prometheus-cpp families in the
// process registry, built from their declarations by ProcessCounters
// (core/process_counters.h) and net/metering.cpp.
//
// The help strings and bounds of registry_http_* are distribution's (its
// Go exporter, docker/go-metrics); they must not change.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include <prometheus/metric_type.h>

namespace regmeter {

// When a series of the family is written.
enum class Presence : std::uint8_t {
  once_observed,  // after its first observation, as everywhere in distribution
  from_start,     // every series from the start, at 0 (so rate() sees the first one)
};

struct FamilyDeclaration {
  std::string_view name;
  std::string_view help;
  prometheus::MetricType type;
  std::span<const std::string_view> labels;  // label names, in the order written
  // Histograms: upper bounds in recording units (ns, bytes, bytes/s), the
  // +Inf bucket not included; `unit` recording units per exposed unit.
  std::span<const std::int64_t> bounds = {};
  double unit = 1.0;
  Presence presence = Presence::once_observed;
};

namespace family_detail {

inline constexpr std::array<std::string_view, 0> kNoLabels{};
inline constexpr std::array<std::string_view, 1> kHandler{"handler"};
inline constexpr std::array<std::string_view, 2> kHandlerMethod{"handler", "method"};
inline constexpr std::array<std::string_view, 3> kCodeHandlerMethod{"code", "handler", "method"};
inline constexpr std::array<std::string_view, 3> kErrorHandlerMethod{"error", "handler", "method"};
inline constexpr std::array<std::string_view, 2> kClientHandler{"client", "handler"};
inline constexpr std::array<std::string_view, 1> kDirection{"direction"};
inline constexpr std::array<std::string_view, 1> kOutcome{"outcome"};
inline constexpr std::array<std::string_view, 1> kReason{"reason"};
inline constexpr std::array<std::string_view, 1> kRepository{"repository"};
inline constexpr std::array<std::string_view, 2> kDirectionRepository{"direction", "repository"};
inline constexpr std::array<std::string_view, 1> kSide{"side"};
inline constexpr std::array<std::string_view, 1> kResult{"result"};
inline constexpr std::array<std::string_view, 1> kState{"state"};

// first, first * 2^step, first * 2^(2 step), ...
template <std::size_t N>
constexpr std::array<std::int64_t, N> powers_of_two(std::int64_t first, int step) {
  std::array<std::int64_t, N> out{};
  for (std::size_t i = 0; i < N; ++i) out[i] = first << (static_cast<int>(i) * step);
  return out;
}

inline constexpr double kNsPerSecond = 1e9;

}  // namespace family_detail

// ---- bucket bounds, in recording units ----

// docker/go-metrics' defaults, used by distribution for every route (ns).
inline constexpr std::array<std::int64_t, 13> kDurationBoundsNs = {
    5'000'000,     10'000'000,     25'000'000,     50'000'000,    100'000'000,
    250'000'000,   500'000'000,    1'000'000'000,  2'500'000'000, 5'000'000'000,
    10'000'000'000, 25'000'000'000, 60'000'000'000,
};
// registry_http_request/response_size_bytes: 1024 * 2^k, k = 0..21.
inline constexpr auto kSizeBounds = family_detail::powers_of_two<22>(1024, 1);
// regmeter_upload_session_duration_seconds: a layer push takes from well
// under a second to hours on a slow link.
inline constexpr std::array<std::int64_t, 16> kSessionDurationBoundsNs = {
    100'000'000,       250'000'000,       500'000'000,       1'000'000'000,
    2'500'000'000,     5'000'000'000,     10'000'000'000,    30'000'000'000,
    60'000'000'000,    120'000'000'000,   300'000'000'000,   600'000'000'000,
    1'200'000'000'000, 1'800'000'000'000, 3'600'000'000'000, 7'200'000'000'000,
};
// regmeter_upload_session_size_bytes: 1024 * 4^k, k = 0..12 (1 KiB .. 16 GiB).
inline constexpr auto kSessionSizeBounds = family_detail::powers_of_two<13>(1024, 2);
// regmeter_upstream_header_seconds: includes sending an upload body.
inline constexpr std::array<std::int64_t, 20> kUpstreamHeaderBoundsNs = {
    1'000'000,       2'500'000,       5'000'000,         10'000'000,        25'000'000,
    50'000'000,      100'000'000,     250'000'000,       500'000'000,       1'000'000'000,
    2'500'000'000,   5'000'000'000,   10'000'000'000,    25'000'000'000,    60'000'000'000,
    120'000'000'000, 300'000'000'000, 600'000'000'000,   1'800'000'000'000, 3'600'000'000'000,
};
// regmeter_upstream_connect_seconds and regmeter_upstream_queue_seconds.
inline constexpr std::array<std::int64_t, 16> kConnectBoundsNs = {
    100'000,     250'000,     500'000,       1'000'000,     2'500'000,     5'000'000,
    10'000'000,  25'000'000,  50'000'000,    100'000'000,   250'000'000,   500'000'000,
    1'000'000'000, 2'500'000'000, 5'000'000'000, 10'000'000'000,
};
// regmeter_image_pull_duration_seconds: a whole image pull, from a cached
// manifest check to a multi-GiB image on a slow link; reaches an hour.
inline constexpr std::array<std::int64_t, 13> kPullDurationBoundsNs = {
    500'000'000,     1'000'000'000,   2'500'000'000,     5'000'000'000,     10'000'000'000,
    30'000'000'000,  60'000'000'000,  120'000'000'000,   300'000'000'000,   600'000'000'000,
    1'200'000'000'000, 1'800'000'000'000, 3'600'000'000'000,
};
// regmeter_image_pull_size_bytes: 1 MiB * 4^k, k = 0..9 (1 MiB .. 256 GiB).
inline constexpr auto kPullSizeBounds = family_detail::powers_of_two<10>(std::int64_t{1} << 20, 2);
// regmeter_blob_throughput_bytes_per_second: 65536 * 2^k, k = 0..17
// (64 KiB/s .. 8 GiB/s).
inline constexpr auto kThroughputBounds = family_detail::powers_of_two<18>(65536, 1);

// ---- the per-request families (metrics shards) ----

namespace families {
using prometheus::MetricType;
using namespace family_detail;

// registry_http_*: exactly distribution's.
inline constexpr FamilyDeclaration kInFlight{"registry_http_in_flight_requests", "The in-flight HTTP requests",
                                             MetricType::Gauge, kHandler, {}, 1.0, Presence::from_start};
inline constexpr FamilyDeclaration kRequests{"registry_http_requests_total", "Total number of HTTP requests made.",
                                             MetricType::Counter, kCodeHandlerMethod};
inline constexpr FamilyDeclaration kRequestDuration{"registry_http_request_duration_seconds",
                                                    "The HTTP request latencies in seconds.", MetricType::Histogram,
                                                    kHandlerMethod, kDurationBoundsNs, kNsPerSecond};
inline constexpr FamilyDeclaration kRequestSize{"registry_http_request_size_bytes", "The HTTP request sizes in bytes.",
                                                MetricType::Histogram, kHandler, kSizeBounds};
inline constexpr FamilyDeclaration kResponseSize{"registry_http_response_size_bytes",
                                                 "The HTTP response sizes in bytes.", MetricType::Histogram, kHandler,
                                                 kSizeBounds};

// regmeter_* per request.
inline constexpr FamilyDeclaration kNativeRequestDuration{
    "regmeter_http_request_duration_seconds",
    "The HTTP request latencies in seconds, with native buckets: the twin of registry_http_request_duration_seconds.",
    MetricType::Histogram, kHandlerMethod, kDurationBoundsNs, kNsPerSecond};
inline constexpr FamilyDeclaration kUpstreamHeader{
    "regmeter_upstream_header_seconds",
    "Seconds from the first byte of a request to the arrival of the final response head from the upstream, sending "
    "of the request body included.",
    MetricType::Histogram, kHandlerMethod, kUpstreamHeaderBoundsNs, kNsPerSecond};
inline constexpr FamilyDeclaration kUpstreamConnect{"regmeter_upstream_connect_seconds",
                                                    "Seconds to establish a new connection to the upstream.",
                                                    MetricType::Histogram, kNoLabels, kConnectBoundsNs, kNsPerSecond};
inline constexpr FamilyDeclaration kUpstreamQueue{
    "regmeter_upstream_queue_seconds",
    "Seconds a request waited for an upstream connection under --upstream-max-connections (0 when none waited), "
    "for every request that needed one.",
    MetricType::Histogram, kNoLabels, kConnectBoundsNs, kNsPerSecond};
inline constexpr FamilyDeclaration kBlobThroughput{
    "regmeter_blob_throughput_bytes_per_second",
    "Body transfer rate of blob uploads and downloads of at least 1 MiB, in bytes per second.",
    MetricType::Histogram, kDirection, kThroughputBounds};
inline constexpr FamilyDeclaration kUploadSessionDuration{
    "regmeter_upload_session_duration_seconds",
    "Seconds from the first byte of the request that opened a blob upload session to the last byte of the response "
    "that ended it, by outcome.",
    MetricType::Histogram, kOutcome, kSessionDurationBoundsNs, kNsPerSecond};
inline constexpr FamilyDeclaration kUploadSessionSize{
    "regmeter_upload_session_size_bytes", "Body bytes carried by all requests of a blob upload session, by outcome.",
    MetricType::Histogram, kOutcome, kSessionSizeBounds};
inline constexpr FamilyDeclaration kImagePullDuration{
    "regmeter_image_pull_duration_seconds",
    "Seconds from the first manifest request of a whole image pull to the last blob byte delivered (redirected: to "
    "the last redirect answer), by outcome.",
    MetricType::Histogram, kOutcome, kPullDurationBoundsNs, kNsPerSecond};
inline constexpr FamilyDeclaration kImagePullSize{
    "regmeter_image_pull_size_bytes", "Blob body bytes a whole image pull delivered through the proxy, by outcome.",
    MetricType::Histogram, kOutcome, kPullSizeBounds};
inline constexpr FamilyDeclaration kAuthChallenges{"regmeter_auth_challenges_total",
                                                   "Responses with status 401 (authentication challenges), by handler.",
                                                   MetricType::Counter, kHandler};
inline constexpr FamilyDeclaration kRejectedConnections{
    "regmeter_rejected_connections_total",
    "Connections refused before a request on them could be parsed (not counted in registry_http_*), by reason.",
    MetricType::Counter, kReason, {}, 1.0, Presence::from_start};

// Per repository; the `repository` label is dropped with --max-repositories 0.
inline constexpr FamilyDeclaration kImagePushes{"regmeter_image_pushes_total",
                                                "Manifest PUTs answered 201 (image pushes), by repository.",
                                                MetricType::Counter, kRepository};
inline constexpr FamilyDeclaration kImagePulls{
    "regmeter_image_pulls_total", "Manifest GETs answered 200 (image pulls; a HEAD is not a pull), by repository.",
    MetricType::Counter, kRepository};
inline constexpr FamilyDeclaration kBlobRedirects{
    "regmeter_blob_redirects_total",
    "Blob GETs answered with a redirect (302/303/307/308: object storage serves the bytes, not the proxy), by "
    "repository.",
    MetricType::Counter, kRepository};
inline constexpr FamilyDeclaration kBlobBytes{
    "regmeter_blob_bytes_total",
    "Blob body bytes moved: upload request bodies and blob GET response bodies, by repository and direction.",
    MetricType::Counter, kDirectionRepository};

// Error codes and client families (issue 16; core/metering_counters.h).
inline constexpr FamilyDeclaration kRegistryErrors{
    "regmeter_registry_errors_total",
    "Answers with status 400-599, by the OCI error code of the first entry of their JSON errors array (other: a "
    "code outside the spec's table; none: no parseable error body).",
    MetricType::Counter, kErrorHandlerMethod};
inline constexpr FamilyDeclaration kClientRequests{"regmeter_client_requests_total",
                                                   "Requests by the client family of their User-Agent, and handler.",
                                                   MetricType::Counter, kClientHandler};
inline constexpr FamilyDeclaration kClientErrors{
    "regmeter_client_errors_total",
    "Requests answered with an error (5xx, or 4xx other than 401 challenges and 404s to HEAD existence checks), by "
    "client family and handler.",
    MetricType::Counter, kClientHandler};

// ---- the cold-path families (process registry) ----

inline constexpr FamilyDeclaration kTlsHandshakeErrors{
    "regmeter_tls_handshake_errors_total",
    "TLS handshakes that failed, by side (client: toward clients; upstream: toward the registry).",
    MetricType::Counter, kSide};
inline constexpr FamilyDeclaration kUpstreamResolutions{
    "regmeter_upstream_resolutions_total",
    "Re-resolutions of the --upstream name after start, by result: changed (the addresses changed), error (lookup "
    "failed; the old addresses are kept).",
    MetricType::Counter, kResult};
inline constexpr FamilyDeclaration kUpstreamAddresses{
    "regmeter_upstream_addresses",
    "Addresses the --upstream name currently resolves to (new connections take them in turn).", MetricType::Gauge,
    kNoLabels};
inline constexpr FamilyDeclaration kUpstreamConnectFailures{
    "regmeter_upstream_connect_failures_total",
    "Connects to an upstream address that failed (refused, unreachable), including those retried on another address "
    "before the client saw an error.",
    MetricType::Counter, kNoLabels};
inline constexpr FamilyDeclaration kUpstreamConnections{
    "regmeter_upstream_connections",
    "Open connections to the upstream, by state: active (serving a request or connecting), idle (pooled for reuse). "
    "Sampled every second.",
    MetricType::Gauge, kState};
inline constexpr FamilyDeclaration kUpstreamQueueDepth{
    "regmeter_upstream_queue_depth",
    "Requests waiting for an upstream connection under --upstream-max-connections. Sampled every second.",
    MetricType::Gauge, kNoLabels};
// The upstream's rate budget (net/metering.h): each series appears with the
// first response that carries it.
inline constexpr FamilyDeclaration kRateLimitLimit{
    "regmeter_upstream_ratelimit_limit",
    "The request budget the upstream announced in its last rate-limit headers (RateLimit-Limit and its variants).",
    MetricType::Gauge, kNoLabels};
inline constexpr FamilyDeclaration kRateLimitRemaining{
    "regmeter_upstream_ratelimit_remaining",
    "What was left of the upstream's request budget in its last rate-limit headers.", MetricType::Gauge, kNoLabels};
inline constexpr FamilyDeclaration kRateLimitWindow{
    "regmeter_upstream_ratelimit_window_seconds",
    "The window of the upstream's request budget, in seconds, from its last rate-limit headers.", MetricType::Gauge,
    kNoLabels};

}  // namespace families

// Every declaration above, for tests and documentation.
inline constexpr auto kAllFamilies = std::to_array<const FamilyDeclaration*>({
    &families::kInFlight,           &families::kRequests,
    &families::kRequestDuration,    &families::kRequestSize,
    &families::kResponseSize,       &families::kNativeRequestDuration,
    &families::kUpstreamHeader,     &families::kUpstreamConnect,
    &families::kUpstreamQueue,      &families::kBlobThroughput,
    &families::kUploadSessionDuration, &families::kUploadSessionSize,
    &families::kImagePullDuration,  &families::kImagePullSize,
    &families::kAuthChallenges,     &families::kRejectedConnections,
    &families::kImagePushes,        &families::kImagePulls,
    &families::kBlobRedirects,      &families::kBlobBytes,
    &families::kRegistryErrors,     &families::kClientRequests,
    &families::kClientErrors,       &families::kTlsHandshakeErrors,
    &families::kUpstreamResolutions, &families::kUpstreamAddresses,
    &families::kUpstreamConnectFailures, &families::kUpstreamConnections,
    &families::kUpstreamQueueDepth, &families::kRateLimitLimit,
    &families::kRateLimitRemaining, &families::kRateLimitWindow,
});

// Classic bucket upper bounds in the exposed unit (seconds, bytes). The
// division of two exact integers rounds to the same double as the decimal
// literal (0.005 etc.), so `le` prints exactly as distribution's.
template <std::size_t N>
constexpr std::array<double, N> exposed_bounds(std::span<const std::int64_t> bounds, double unit) {
  std::array<double, N> out{};
  for (std::size_t i = 0; i < N; ++i) out[i] = static_cast<double>(bounds[i]) / unit;
  return out;
}

}  // namespace regmeter
