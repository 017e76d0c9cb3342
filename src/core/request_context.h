// The state of one request on a client connection, from the first byte of
// its head to its finish. Created when a head starts and destroyed once the
// exchange is recorded, so nothing of one request can leak into the next
// keep-alive request (no field is ever reset by hand). What must outlive a
// request (the streams, the parsers and the response meter with their
// reusable buffers, the phase, whether the connection closes) stays in
// ClientConnection.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "core/exchange_record.h"
#include "core/route.h"
#include "core/upload_session.h"
#include "core/exemplar.h"

namespace regmeter {

// The wall clock, as the access log and upload-session tokens count it.
inline std::int64_t unix_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct RequestContext {
  Exchange record;  // what the metrics get when it finishes
  Route route;
  std::string upstream_head;  // kept to replay once on a fresh connection
  std::string client_host;
  std::string client_target;  // as the client sent it, query included
  std::int64_t started_unix_ns = 0;
  std::optional<SessionToken> session_token;  // carried in by the client's upload URL
  SessionStep session_step;
  std::string session_id;  // the upload id, for the access log
  std::array<char, kRequestIdChars> request_id_hex{};  // record.request_id as text (access log, X-Request-Id)

  Clock::time_point queued_since;
  std::size_t connect_attempts = 0;  // failed connects for this request (one per address)
  bool session_request_in_table = false;  // counted in flight in the open-session table until recorded
  bool head_request = false;
  bool in_flight = false;  // counted by request_started, not yet recorded
  bool request_done = false;
  bool response_head_sent = false;
  bool response_done = false;
  bool body_bytes_forwarded = false;
  bool upstream_reusable = true;
  bool retried = false;
  bool queued = false;  // waiting for an upstream connection (cancel_wait on the way out)
};

// The heap space of a finished request's strings, handed to the next one:
// a keep-alive connection allocates it once, not per request.
struct RequestBuffers {
  std::string client_host, client_target, session_id;

  void give_to(RequestContext& request) {
    request.client_host.swap(client_host);
    request.client_target.swap(client_target);
    request.session_id.swap(session_id);
  }
  void take_from(RequestContext& request) {
    client_host.swap(request.client_host);
    client_target.swap(request.client_target);
    session_id.swap(request.session_id);
    client_host.clear();
    client_target.clear();
    session_id.clear();
  }
};

}  // namespace regmeter
