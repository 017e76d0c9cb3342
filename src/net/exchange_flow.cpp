// ClientConnection's backpressure (which side reads), its one timer and
// what each purpose of it means when it fires, and the ways a connection
// ends: lingering after an early answer, and destroy().
#include <algorithm>

#include <event2/buffer.h>
#include <fmt/format.h>

#include "core/config.h"
#include "core/log.h"
#include "net/connection_host.h"
#include "net/exchange.h"

namespace regmeter {

namespace {
constexpr double kLingerSeconds = 2.0;
}

void ClientConnection::update_flow() {
  if (dead_) return;
  const FlowLimits& limits = host_.limits();
  // Client → upstream: pause reading the client when its bytes pile up
  // here or in the upstream's send queue; resume once drained to the low mark.
  std::size_t pressure = client_input();
  if (phase_ == Phase::exchanging && !request_->request_done && upstream_)
    pressure = std::max(pressure, evbuffer_get_length(upstream_->stream->output()));
  bool read_client = phase_ == Phase::reading_head || phase_ == Phase::lingering ||
                     (client_->reading() ? pressure < limits.high_watermark : pressure <= limits.low_watermark);
  client_->set_reading(read_client);

  // Upstream → client, the same way.
  if (upstream_ && phase_ == Phase::exchanging) {
    std::size_t backlog = client_output();
    bool read_upstream = upstream_->stream->reading() ? backlog < limits.high_watermark
                                                      : backlog <= limits.low_watermark;
    upstream_->stream->set_reading(read_upstream);
  }
}

void ClientConnection::arm_timer(Timer purpose, double seconds) {
  timer_purpose_ = purpose;
  if (purpose == Timer::none) {
    timer_->cancel();
    return;
  }
  timer_->arm(seconds);
}

std::uint64_t ClientConnection::progress() const {
  return client_->transferred() + (upstream_ ? upstream_->stream->transferred() : 0);
}

void ClientConnection::arm_body_timer() {
  progress_mark_ = progress();
  arm_timer(Timer::body, host_.config().body_timeout_s);
}

// The body timer fires every --body-timeout; only a period without a single
// byte moved either way counts as a stall, so slow but moving transfers of
// any length are never cut.
void ClientConnection::body_stalled() {
  if (progress() != progress_mark_) {
    // Once a period, not per chunk: the session table has one mutex.
    if (request_->session_request_in_table) host_.sessions().request_progressed(request_->route.reference, unix_now_ns());
    arm_body_timer();
    return;
  }
  std::string why = fmt::format("no body progress for {} s", host_.config().body_timeout_s);
  if (request_->response_head_sent) {
    log_warn_limited("client {}: {} while sending the response; closing", client_address_, why);
    destroy();
    return;
  }
  bool client_stalled = !request_->request_done && client_input() == 0 &&
                        (!upstream_ || evbuffer_get_length(upstream_->stream->output()) == 0);
  if (client_stalled) {
    send_local_response({408, "UNSUPPORTED", "request body: " + why});
    return;
  }
  upstream_failed(why, true);
}

void ClientConnection::on_timer(void* arg) {
  auto* self = static_cast<ClientConnection*>(arg);
  if (self->dead_) return;
  switch (self->timer_purpose_) {
    case Timer::none: return;
    case Timer::idle:
    case Timer::linger:
      self->destroy();
      return;
    case Timer::header:
      self->reject_connection(RejectReason::header_timeout, 408,
                              fmt::format("request head not received within {} s", self->host_.config().header_timeout_s));
      return;
    case Timer::body:
      self->body_stalled();
      return;
    case Timer::queue:
      self->queue_timed_out();
      return;
    case Timer::upstream:
      if (self->phase_ == Phase::connecting_upstream)
        self->upstream_connect_failed(
            fmt::format("connect timed out after {} s", self->host_.config().upstream_connect_timeout_s), true);
      else
        self->upstream_failed(fmt::format("no response within {} s", self->host_.config().upstream_timeout_s), true);
      return;
  }
}

// ---------------------------------------------------------------- closing

void ClientConnection::close_connection(bool request_read) {
  bool unread = client_input() > 0 || !request_read;
  if (!unread || client_->peer_closed()) {
    destroy();
    return;
  }
  // The client may still be sending the request we answered early. Closing
  // with unread bytes makes the kernel send a reset, which can destroy our
  // answer in flight; so stop writing, read and discard for a moment first.
  phase_ = Phase::lingering;
  client_->shutdown_write();
  evbuffer_drain(client_->input(), client_input());
  client_->set_reading(true);
  arm_timer(Timer::linger, kLingerSeconds);
}

void ClientConnection::destroy() {
  if (dead_) return;
  dead_ = true;
  if (request_ && request_->queued) {
    host_.upstream().cancel_wait(this);
    request_->queued = false;
    request_->record.upstream_queue_wait += Clock::now() - request_->queued_since;
  }
  record_exchange();
  arm_timer(Timer::none, 0);
  upstream_.reset();
  client_.reset();
  host_.forget(this);  // deletes this from the loop, not here: callers up the stack still hold it
}

}  // namespace regmeter
