// The access log: one JSON line per finished request, and one per event that
// is not a request (an upload session given up on, a refused connection).
// Worker threads format lines into their own buffer and hand over whole
// batches; one writer thread does the blocking writes, so a slow disk never
// stalls an event loop.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <variant>
#include <vector>

namespace regmeter {

struct AccessRecord {
  std::int64_t started_unix_ns = 0;
  std::string_view client;
  std::string_view method;
  std::string_view handler;
  std::string_view repository;
  std::string_view reference;
  int status = 0;
  std::uint64_t request_bytes = 0;
  std::uint64_t response_bytes = 0;
  double duration_s = 0;
  double upstream_header_s = -1;  // < 0: no response head came from upstream
  std::string_view upload_session;  // upload id, when the request is part of a session
  std::string_view session_outcome; // when this request closed the session
  std::string_view user_agent;
  std::string_view request_id;         // regmeter's id: the one in exemplars and sent upstream as X-Request-Id
  std::string_view client_request_id;  // the client's own X-Request-Id, forwarded unchanged; empty: none sent
  std::string_view trace_id;           // from the client's W3C traceparent; empty: none
  std::string_view client_family;  // the User-Agent's family (regmeter_client_requests_total's `client`)
  std::string_view error;          // 4xx/5xx answers: the error code (regmeter_registry_errors_total's `error`)
};

// Appends the JSON line (with '\n') for `record` to `out`.
void format_access_line(std::string& out, const AccessRecord& record);

// Something worth a line that is not a request:
//   {"time":"…","event":"<name>",<fields in the order given>}
// `time` is when it happened; request lines never carry "event", so readers
// tell the two apart by that key.
struct AccessEvent {
  struct Field {
    std::string_view name;
    // Text is a JSON string, integers as they are, doubles (seconds) with
    // microseconds, as duration_s on request lines.
    std::variant<std::string_view, std::uint64_t, double> value;
  };
  std::int64_t unix_ns = 0;
  std::string_view name;
  std::vector<Field> fields;
};
void format_access_event(std::string& out, const AccessEvent& event);

class AccessLogSink {
 public:
  // "stdout" or a file path (appended to, created if missing). Throws
  // std::runtime_error naming the file and the reason.
  explicit AccessLogSink(const std::string& where);
  ~AccessLogSink();  // writes what is queued, then stops the writer
  AccessLogSink(const AccessLogSink&) = delete;
  AccessLogSink& operator=(const AccessLogSink&) = delete;

  void submit(std::string batch, std::size_t lines);  // from any thread
  void request_reopen();                              // SIGUSR1: logrotate moved the file
  std::uint64_t dropped_lines() const { return dropped_lines_.load(); }

 private:
  void run();
  int open_target();

  std::string where_;
  int fd_ = -1;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::string> queue_;
  std::size_t queued_bytes_ = 0;
  bool stopping_ = false;
  std::atomic<bool> reopen_{false};
  std::atomic<std::uint64_t> dropped_lines_{0};
  std::thread writer_;
};

// One per worker thread: collects lines, hands them over in batches.
class AccessLogBuffer {
 public:
  explicit AccessLogBuffer(AccessLogSink* sink) : sink_(sink) {}
  ~AccessLogBuffer() { flush(); }
  bool enabled() const { return sink_ != nullptr; }
  void add(const AccessRecord& record);
  void add(const AccessEvent& event);
  void flush();

 private:
  void line_added();
  AccessLogSink* sink_;
  std::string buffer_;
  std::size_t lines_ = 0;
};

}  // namespace regmeter
