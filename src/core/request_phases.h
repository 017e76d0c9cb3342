// The proxy's decisions for one request, in the order the connection engine
// (net/exchange.cpp) asks for them, on plain values: no I/O, no sockets, no
// clock. Each phase reads and fills the request's RequestContext and says
// what to send; the engine does the sending, the counting and the timers.
//
//   1. on_request_head   the head parsed: refuse it here, or route it and
//                        build the head to send upstream
//   2. on_response_head  the final response head: the head for the client,
//                        the upload-session step, whether connections close
//   3. on_finish         the exchange is recorded: what the open-session
//                        table and the upload-session metrics learn, and
//                        access_record_of its access-log line
// and local_reply_bytes for an answer made here (errors, refusals).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/access_record.h"
#include "core/config.h"
#include "core/http_head.h"
#include "core/metrics.h"
#include "core/request_context.h"
#include "core/upload_session.h"

namespace regmeter {

// An answer made here instead of by the registry.
struct LocalReply {
  LocalReply(int status, std::string_view code, std::string_view message, std::string_view extra_headers = {},
             bool close_after = false)
      : status(status), code(code), message(message), extra_headers(extra_headers), close_after(close_after) {}
  int status = 0;
  std::string_view code;           // the OCI error code in its JSON body
  std::string message;
  std::string_view extra_headers;  // whole header lines, each ending in CRLF
  bool close_after = false;        // whatever follows on the connection will not be read
};

// Its bytes: distribution's error body and a head that announces it.
struct LocalReplyBytes {
  std::string head, body;
};
LocalReplyBytes local_reply_bytes(const LocalReply& reply, bool close_connection);
std::string_view reason_phrase(int status);

// The rejection reason for a head the parser refused with `status`
// (505, 431 or 400).
RejectReason head_refusal_reason(int status);

// ---- 1. the request head parsed
struct RequestHeadInputs {
  std::string_view client_address;  // the peer, for X-Forwarded-For
  std::string_view client_scheme;   // "http" or "https"
  bool trust_forwarded = false;
  const HostPort* listen = nullptr;  // our address: Host when the client sent none
};
// Sets the request's method, client family and HEAD-ness, then either
// returns the refusal to answer here (CONNECT, a target in no usable form, an
// ambiguous /v2/ path) or routes it: target, session token (taken out of the
// URL), route, Host, and the head to send upstream. request.request_id_hex
// must be set (X-Request-Id).
std::optional<LocalReply> on_request_head(RequestContext& request, const MessageHead& head,
                                          const RequestHeadInputs& inputs);

// ---- 2. the final response head
struct ResponseHeadInputs {
  std::string_view upstream_authority;  // as configured: Location pointing there is rewritten
  std::string_view client_scheme;
  bool close_after = false;     // the client connection already closes after this exchange
  bool body_until_eof = false;  // the parser says the body ends when the upstream closes
};
struct ResponseHeadPlan {
  std::string client_head;  // the head to queue for the client
  bool close_after = false;  // the client connection closes after this response
  // An upload session that is open with `session_token` from now on.
  const std::string* touched_upload_id = nullptr;  // into the request's context; null: none
  SessionToken session_token;
};
// Sets the request's session step and upload id, and clears
// upstream_reusable when the upstream connection cannot carry another request.
ResponseHeadPlan on_response_head(RequestContext& request, const MessageHead& response,
                                  const ResponseHeadInputs& inputs);
// The upload id a session-opening answer hands out, from its Location.
std::string upload_id_of(const MessageHead& response);

// ---- 3. finished
struct FinishPlan {
  // The request leaves the open-session table's in-flight count (it was in
  // it), adding `unanswered_bytes` to its session when no answer carried them.
  bool leaves_session_table = false;
  std::uint64_t unanswered_bytes = 0;
  bool session_closed = false;  // drop the upload from the table
  std::optional<SessionObservation> closed_session;  // for regmeter_upload_session_*
};
FinishPlan on_finish(const RequestContext& request, std::int64_t now_unix_ns);
// The finished request's access-log line, but for its request ids (the
// engine adds those: net/request_identity.h). Views into `request`, `head`
// and `client_address`, which must outlive it.
AccessRecord access_record_of(const RequestContext& request, const MessageHead& head,
                              std::string_view client_address);

}  // namespace regmeter
