// The access log's lines as values and their JSON text: one line per
// finished request (AccessRecord) and one per event that is not a request
// (AccessEvent). Pure formatting; net/access_log.h batches the lines and a
// writer thread writes them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
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

}  // namespace regmeter
