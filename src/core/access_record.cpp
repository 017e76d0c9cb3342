#include "core/access_record.h"

#include <cstdio>
#include <ctime>

#include <fmt/format.h>

#include "core/json.h"

namespace regmeter {

namespace {
void append_field(std::string& out, std::string_view name, std::string_view value) {
  out.append(",\"").append(name).append("\":");
  append_json_string(out, value);
}

// Opens a line: `{"time":"2025-11-25T10:00:00.123Z"` (UTC, milliseconds).
void open_line(std::string& out, std::int64_t unix_ns) {
  std::time_t seconds = static_cast<std::time_t>(unix_ns / 1'000'000'000);
  int millis = static_cast<int>((unix_ns / 1'000'000) % 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char stamp[40];
  std::size_t n = std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(stamp + n, sizeof stamp - n, ".%03dZ", millis);
  out.append("{\"time\":\"").append(stamp).append("\"");
}
}  // namespace

void format_access_line(std::string& out, const AccessRecord& r) {
  open_line(out, r.started_unix_ns);
  append_field(out, "client", r.client);
  append_field(out, "method", r.method);
  append_field(out, "handler", r.handler);
  append_field(out, "repository", r.repository);
  append_field(out, "reference", r.reference);
  out.append(fmt::format(",\"status\":{},\"request_bytes\":{},\"response_bytes\":{},\"duration_s\":{:.6f}", r.status,
                         r.request_bytes, r.response_bytes, r.duration_s));
  if (r.upstream_header_s >= 0) out.append(fmt::format(",\"upstream_header_s\":{:.6f}", r.upstream_header_s));
  if (!r.upload_session.empty()) append_field(out, "upload_session", r.upload_session);
  if (!r.session_outcome.empty()) append_field(out, "session_outcome", r.session_outcome);
  append_field(out, "user_agent", r.user_agent);
  if (!r.request_id.empty()) append_field(out, "request_id", r.request_id);
  if (!r.client_request_id.empty()) append_field(out, "client_request_id", r.client_request_id);
  if (!r.trace_id.empty()) append_field(out, "trace_id", r.trace_id);
  if (!r.client_family.empty()) append_field(out, "client_family", r.client_family);
  if (!r.error.empty()) append_field(out, "error", r.error);
  out.append("}\n");
}

void format_access_event(std::string& out, const AccessEvent& event) {
  open_line(out, event.unix_ns);
  append_field(out, "event", event.name);
  for (const auto& field : event.fields) {
    if (const auto* text = std::get_if<std::string_view>(&field.value)) {
      append_field(out, field.name, *text);
      continue;
    }
    out.append(",\"").append(field.name).append("\":");
    if (const auto* count = std::get_if<std::uint64_t>(&field.value))
      out.append(fmt::format("{}", *count));
    else
      out.append(fmt::format("{:.6f}", std::get<double>(field.value)));
  }
  out.append("}\n");
}

}  // namespace regmeter
