// ClientConnection's last phase: the finished exchange goes to the metrics,
// the access log, the image pull table and the open-session table.
#include "core/config.h"
#include "core/request_phases.h"
#include "net/access_log.h"
#include "net/connection_host.h"
#include "net/exchange.h"
#include "net/metering.h"
#include "net/request_identity.h"

namespace regmeter {

void ClientConnection::record_exchange() {
  if (!request_ || !request_->in_flight) return;
  request_->in_flight = false;
  request_->record.finished = Clock::now();
  request_->record.finished_unix_ns = unix_now_ns();
  host_.request_finished(request_->record);
  write_access_log();
  record_pull_request();
  FinishPlan plan = on_finish(*request_, unix_now_ns());
  if (plan.leaves_session_table) {
    request_->session_request_in_table = false;
    host_.sessions().request_ended(request_->route.reference, unix_now_ns(), plan.unanswered_bytes);
  }
  if (plan.session_closed) host_.sessions().close(request_->route.reference);
  if (plan.closed_session)
    host_.metrics().upload_session_closed(request_->session_step.outcome, plan.closed_session->seconds,
                                          plan.closed_session->bytes);
}

void ClientConnection::write_access_log() {
  AccessLogBuffer& log = host_.access_log();
  if (!log.enabled()) return;
  const MessageHead& request = request_parser_.head();
  AccessRecord line = access_record_of(*request_, request, client_address_);
  RequestIdFields ids(request_->record, request_->request_id_hex, request);
  ids.fill(line);
  log.add(line);
}

// Hands a manifest or blob exchange to the image pull table.
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
