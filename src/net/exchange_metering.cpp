// ClientConnection's hand-off to the image pull table, kept out of
// exchange.cpp (the phases) since it is bookkeeping after the exchange.
#include "net/exchange.h"
#include "net/metering.h"
#include "net/worker.h"

namespace regmeter {

void ClientConnection::record_pull_request() {
  SharedMetering& metering = worker_.metering();
  if (!metering.tracks_pulls()) return;
  if (route_.handler != Handler::manifest && route_.handler != Handler::blob) return;
  const MessageHead& request = request_parser_.head();
  SharedMetering::PullRequest pull;
  pull.key = PullKey{pull_client_address(request, client_address_, worker_.config().trust_forwarded),
                     record_.user_agent, route_.repository};
  pull.handler = route_.handler;
  pull.method = record_.method;
  pull.status = record_.status;
  pull.reference = route_.reference;
  pull.response_body_bytes = record_.response_body_bytes;
  pull.started = record_.started;
  pull.finished = record_.finished;
  pull.meter = &meter_;
  pull.response_complete = response_done_ && record_.reached_upstream;
  metering.pull_request_finished(pull, worker_.metrics());
}

}  // namespace regmeter
