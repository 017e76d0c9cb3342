// ClientConnection's ways of failing and refusing: a connect that failed
// (next address), an upstream that failed (retry once, or 502/504), local
// answers to requests, and connections rejected before a request parsed.
#include <algorithm>

#include <event2/buffer.h>

#include "core/log.h"
#include "core/request_phases.h"
#include "net/access_log.h"
#include "net/connection_host.h"
#include "net/exchange.h"
#include "net/tls_stream.h"  // looks_like_tls_handshake

namespace regmeter {

// A connect that failed (refused, unreachable): nothing was sent, so the
// request may go to the next address the upstream name resolves to, and the
// resolver looks the name up again in case the registry moved.
void ClientConnection::upstream_connect_failed(const std::string& what, bool timed_out) {
  if (upstream_) host_.upstream().connect_failed(*upstream_);
  constexpr std::size_t kMaxConnectAttempts = 3;
  if (++request_->connect_attempts < std::min(host_.upstream().address_count(), kMaxConnectAttempts)) {
    release_upstream(false);
    connect_upstream();
    return;
  }
  upstream_failed(what, timed_out);
}

void ClientConnection::upstream_failed(const std::string& what, bool timed_out) {
  bool was_reused = upstream_ && upstream_->requests_served > 0;
  bool nothing_received = upstream_ && evbuffer_get_length(upstream_->stream->input()) == 0;
  release_upstream(false);
  if (request_->response_head_sent) {
    // Mid-response: close so the client sees a truncated transfer, never a
    // short body passed off as complete.
    log_warn_limited("upstream {} failed mid-response ({}): closing the client connection",
                     host_.upstream().description(), what);
    destroy();
    return;
  }
  // A pooled connection the upstream had just closed: replay the request
  // once on a fresh one, when nothing of a body was sent.
  if (!timed_out && was_reused && nothing_received && !request_->retried && !request_->body_bytes_forwarded && request_->request_done) {
    request_->retried = true;
    connect_upstream();
    return;
  }
  // The detail (addresses, certificate and resolver errors) is for the
  // operator's log, not for whoever the client is.
  log_warn_limited("upstream {}: {}", host_.upstream().description(), what);
  send_local_response({timed_out ? 504 : 502, "UNAVAILABLE",
                       timed_out ? "upstream registry timed out" : "upstream registry unavailable"});
}

void ClientConnection::send_local_response(const LocalReply& reply) {
  if (request_->response_head_sent) {
    destroy();
    return;
  }
  if (!request_->in_flight) {
    // Parsed, then refused before classification (CONNECT, the target): counted as `other`.
    request_->record.handler = Handler::other;
    host_.metrics().request_started(request_->record.handler);
    request_->in_flight = true;
  }
  queue_local_response(reply);
}

// Bytes that cannot start a request. Most often a client trying TLS first:
// docker, podman, buildah and skopeo do so even for an insecure registry, and
// fall back to plain HTTP on this answer. A plain 400 is what a Go registry
// sends them too, and Go clients then say "server gave HTTP response to HTTPS
// client", which points at the cause.
void ClientConnection::reject_unparseable_start(std::string_view first_bytes) {
  if (looks_like_tls_handshake(first_bytes))
    reject_connection(RejectReason::tls_on_plain_port, 400,
                      "TLS handshake on a plain-HTTP port: use http:// (an insecure registry) here");
  else
    reject_connection(RejectReason::not_http, 400, "not an HTTP/1.x request");
}

void ClientConnection::reject_connection(RejectReason reason, int status, std::string_view message) {
  count_rejection(reason, status);
  close_after_ = true;
  queue_local_response({status, "UNSUPPORTED", message});
}

// The one place where rejected connections are counted: a registry behind us
// would have counted nothing, so neither do the registry_http_* families.
void ClientConnection::count_rejection(RejectReason reason, int status) {
  host_.metrics().connection_rejected(reason);
  AccessLogBuffer& log = host_.access_log();
  if (!log.enabled()) return;
  log.add(AccessEvent{request_ ? request_->started_unix_ns : unix_now_ns(),
                      "rejected",
                      {{"reason", reject_reason_name(reason)},
                       {"client", std::string_view(client_address_)},
                       {"status", static_cast<std::uint64_t>(status)}}});
}

void ClientConnection::on_plain_http_refused(Stream&) {
  if (dead_) return;
  count_rejection(RejectReason::http_on_tls_port, 400);
  close_connection(false);  // lingers until the client has read the answer and closed
}

void ClientConnection::queue_local_response(const LocalReply& reply) {
  release_upstream(false);
  if (!request_->request_done) close_after_ = true;
  auto [head, body] = local_reply_bytes(reply, close_after_);
  evbuffer_add(client_->output(), head.data(), head.size());
  if (!request_->head_request) evbuffer_add(client_->output(), body.data(), body.size());
  request_->record.status = reply.status;
  request_->record.response_body_bytes = request_->head_request ? 0 : body.size();
  meter_.local_answer(reply.status, reply.code, request_->head_request);
  request_->record.error = meter_.error();
  request_->response_head_sent = true;
  request_->response_done = true;
  enter_finishing();
}

void ClientConnection::release_upstream(bool reusable) {
  if (!upstream_) return;
  if (reusable)
    host_.upstream().give_back(std::move(upstream_));
  upstream_.reset();
}

}  // namespace regmeter
