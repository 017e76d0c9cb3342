// ClientConnection's hand-off to the image pull table, kept out of
// exchange.cpp (the phases) since it is bookkeeping after the exchange.
#include "net/exchange.h"
#include "net/metering.h"
#include "net/connection_host.h"
#include "core/config.h"

namespace regmeter {

void ClientConnection::record_pull_request() {
  SharedMetering& metering = host_.metering();
  if (!metering.tracks_pulls()) return;
  if (request_->route.handler != Handler::manifest && request_->route.handler != Handler::blob) return;
  const MessageHead& request = request_parser_.head();
  SharedMetering::PullRequest pull;
  pull.key = PullKey{pull_client_address(request, client_address_, host_.config().trust_forwarded),
                     request_->record.user_agent, request_->route.repository};
  pull.handler = request_->route.handler;
  pull.method = request_->record.method;
  pull.status = request_->record.status;
  pull.reference = request_->route.reference;
  pull.response_body_bytes = request_->record.response_body_bytes;
  pull.started = request_->record.started;
  pull.finished = request_->record.finished;
  pull.meter = &meter_;
  pull.response_complete = request_->response_done && request_->record.reached_upstream;
  metering.pull_request_finished(pull, host_.metrics());
}

}  // namespace regmeter
