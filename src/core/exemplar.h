// Exemplars: the most recent request seen in a bucket or counter series, so
// that an operator can go from "this bucket is slow" to the request's line in
// the access log (request_id) or to its trace (trace_id).
//
// An Exemplar is a fixed-size record, 48 bytes, written on the request path
// with plain stores (no allocation, no formatting): the ids are kept as
// integers and turned into hex only at scrape. A slot is just an Exemplar
// that the next request overwrites; it is guarded by whatever guards the
// series it belongs to (the metrics shard's mutex, held by the worker thread
// while recording and by a scrape while copying).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace regmeter {

// A request id unique within the process: 64 random bits drawn at start
// (distinct across restarts and replicas with overwhelming probability), a
// 16-bit worker-thread index and a 48-bit per-thread sequence number. Written
// as 32 lowercase hex digits: prefix, thread, sequence.
struct RequestId {
  std::uint64_t prefix = 0;
  std::uint64_t thread_and_sequence = 0;

  bool empty() const { return prefix == 0 && thread_and_sequence == 0; }
  friend bool operator==(const RequestId&, const RequestId&) = default;
};

inline constexpr std::size_t kRequestIdChars = 32;
std::array<char, kRequestIdChars> to_hex(RequestId id);

// 64 random bits for RequestId::prefix (getrandom(2)), never 0. Throws
// std::runtime_error when the kernel gives no randomness.
std::uint64_t random_request_id_prefix();

// One per worker thread: ids need no synchronization. At a million requests
// a second a thread's 48-bit sequence lasts 8.9 years before it wraps.
class RequestIdGenerator {
 public:
  RequestIdGenerator(std::uint64_t prefix, std::uint16_t thread_index)
      : prefix_(prefix), thread_bits_(std::uint64_t{thread_index} << 48) {}

  RequestId next() {
    sequence_ = (sequence_ + 1) & kSequenceMask;
    return RequestId{prefix_, thread_bits_ | sequence_};
  }

 private:
  static constexpr std::uint64_t kSequenceMask = (std::uint64_t{1} << 48) - 1;
  std::uint64_t prefix_;
  std::uint64_t thread_bits_;
  std::uint64_t sequence_ = 0;
};

// A W3C Trace Context trace id (16 bytes); all zero means "no trace".
struct TraceId {
  std::array<std::uint8_t, 16> bytes{};

  bool empty() const;
  friend bool operator==(const TraceId&, const TraceId&) = default;
};

inline constexpr std::size_t kTraceIdChars = 32;
std::array<char, kTraceIdChars> to_hex(const TraceId& id);

// The trace id of a W3C `traceparent` header value
// (version "-" trace-id "-" parent-id "-" flags, lowercase hex), or nullopt
// when the header is malformed: wrong length or separators, a non-hex or
// uppercase digit, version ff, an all-zero trace id or parent id. Version 00
// must be exactly 55 characters; a later version may carry more after a
// further "-", which is ignored (the spec's rule for forward compatibility).
// Surrounding spaces and tabs (optional whitespace) are ignored.
std::optional<TraceId> parse_traceparent(std::string_view header);

struct Exemplar {
  RequestId request_id;
  TraceId trace_id;              // empty: the request carried no traceparent
  double value = 0;              // the observation (seconds, bytes) or, on a counter, the increment
  std::int64_t unix_nanos = 0;   // wall-clock time of the observation; 0: slot never written

  bool empty() const { return unix_nanos == 0; }
};

// The exemplar's label names as the writers emit them, request_id first.
inline constexpr std::string_view kRequestIdLabel = "request_id";
inline constexpr std::string_view kTraceIdLabel = "trace_id";
// OpenMetrics (and Prometheus's exemplar storage) refuse an exemplar whose
// label names and values exceed 128 UTF-8 characters in total. Ours are
// fixed-length ASCII, 82 characters with both ids, so nothing is ever
// truncated or dropped; this is checked here rather than at run time.
inline constexpr std::size_t kMaxExemplarLabelChars = 128;
static_assert(kRequestIdLabel.size() + kRequestIdChars + kTraceIdLabel.size() + kTraceIdChars <=
              kMaxExemplarLabelChars);

}  // namespace regmeter
