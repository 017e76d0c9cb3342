// ClientConnection's side of the --upstream-max-connections queue: its turn
// (a connection handed over or a slot to dial with) and its queue timeout.
#include <algorithm>

#include <fmt/format.h>

#include "core/config.h"
#include "core/log.h"
#include "net/connection_host.h"
#include "net/exchange.h"

namespace regmeter {

void ClientConnection::upstream_turn(std::unique_ptr<UpstreamConnection> reused, UpstreamSlot slot) {
  if (dead_) return;
  request_->queued = false;
  request_->record.upstream_queue_wait += Clock::now() - request_->queued_since;
  if (!reused) {
    connect_upstream(std::move(slot));
    return;
  }
  upstream_ = std::move(reused);
  upstream_->stream->set_handler(this);
  send_request_head();
}

// Waited --upstream-queue-timeout for a connection: the registry is as busy
// as the operator allows. A 503 with Retry-After makes clients back off and
// come back, instead of timing out on their own.
void ClientConnection::queue_timed_out() {
  host_.upstream().cancel_wait(this);
  request_->queued = false;
  request_->record.upstream_queue_wait += Clock::now() - request_->queued_since;
  log_warn_limited("upstream {}: no connection free within --upstream-queue-timeout {} s (--upstream-max-connections {})",
                   host_.upstream().description(), host_.config().upstream_queue_timeout_s,
                   host_.config().upstream_max_connections);
  auto retry_after = static_cast<long>(std::max(1.0, host_.config().upstream_queue_timeout_s));
  std::string retry_header = fmt::format("Retry-After: {}\r\n", retry_after);
  send_local_response({503, "TOOMANYREQUESTS", "too many requests waiting for the upstream registry; retry later",
                       retry_header});
}

}  // namespace regmeter
