#include "net/exchange.h"

#include <algorithm>

#include <event2/buffer.h>
#include <fmt/format.h>

#include "core/config.h"
#include "core/headers.h"
#include "core/request_phases.h"
#include "core/response_meter.h"
#include "net/connection_host.h"
#include "net/metering.h"
#include "net/request_identity.h"

namespace regmeter {

namespace {

// Feeds `scanner` the bytes of `buffer` it has not seen yet (it counts what
// it has), segment by segment without copying, so a head arriving a byte at
// a time is still scanned once.
HeadScanner::Status scan_new_bytes(HeadScanner& scanner, evbuffer* buffer) {
  constexpr int kSegments = 16;
  // Bounded: every round scans bytes or stops.
  while (scanner.status() == HeadScanner::Status::need_more && scanner.scanned() < evbuffer_get_length(buffer)) {
    evbuffer_ptr from;
    if (evbuffer_ptr_set(buffer, &from, scanner.scanned(), EVBUFFER_PTR_SET) != 0) break;
    evbuffer_iovec segments[kSegments];
    int count = std::min(evbuffer_peek(buffer, -1, &from, segments, kSegments), kSegments);
    if (count <= 0) break;
    for (int i = 0; i < count && scanner.status() == HeadScanner::Status::need_more; ++i)
      scanner.scan({static_cast<const char*>(segments[i].iov_base), segments[i].iov_len});
  }
  return scanner.status();
}

// Feeds the front of `source` to `parser` until its message ends, then moves
// exactly those bytes onto `destination` (chain moves, no copies), except a
// chunked body's trailer section, which the parser checked and which is
// replaced by the empty line that ends the body.
struct BodyMove {
  std::uint64_t body_bytes = 0;
  std::size_t moved = 0;
  bool ok = true;
};
BodyMove move_body(MessageParser& parser, evbuffer* source, evbuffer* destination) {
  BodyMove result;
  constexpr int kSegments = 16;
  // Bounded: every round consumes bytes or stops.
  while (!parser.complete() && evbuffer_get_length(source) > 0) {
    evbuffer_iovec segments[kSegments];
    int count = std::min(evbuffer_peek(source, -1, nullptr, segments, kSegments), kSegments);
    std::size_t consumed = 0, relayed = 0;  // relayed: a prefix of consumed
    for (int i = 0; i < count && !parser.complete(); ++i) {
      auto progress = parser.parse_body({static_cast<const char*>(segments[i].iov_base), segments[i].iov_len});
      consumed += progress.consumed;
      relayed += progress.relayed;
      result.body_bytes += progress.body_bytes;
      if (!progress.ok) {
        result.ok = false;
        break;
      }
      if (progress.consumed < segments[i].iov_len) break;
    }
    if (relayed > 0) evbuffer_remove_buffer(source, destination, relayed);
    if (consumed > relayed) evbuffer_drain(source, consumed - relayed);
    result.moved += relayed;
    if (parser.complete() && parser.trailers_dropped()) {
      evbuffer_add(destination, "\r\n", 2);
      result.moved += 2;
    }
    if (!result.ok || consumed == 0) break;
  }
  return result;
}

}  // namespace

ClientConnection::ClientConnection(ConnectionHost& host, std::unique_ptr<Stream> client, std::string client_address)
    : host_(host),
      client_(std::move(client)),
      client_address_(std::move(client_address)),
      timer_(host.make_timer(&ClientConnection::on_timer, this)),
      request_parser_(MessageParser::Kind::request,
                      HeadLimits{host.config().max_header_bytes, host.config().max_header_fields}) {
  if (client_) client_->set_handler(this);
}

ClientConnection::~ClientConnection() {
  if (request_ && request_->queued) host_.upstream().cancel_wait(this);
}

void ClientConnection::start() {
  if (!client_) {
    destroy();
    return;
  }
  client_->set_low_watermark(host_.limits().low_watermark);
  client_->set_reading(true);
  arm_timer(Timer::idle, host_.config().idle_timeout_s);
}

void ClientConnection::begin_shutdown() {
  if (dead_) return;
  if (phase_ == Phase::reading_head && client_input() == 0) {
    // Between requests on a keep-alive connection: clients open a new one
    // for the next request, as after any keep-alive close.
    if (answered_a_request_) {
      destroy();
      return;
    }
    // Just accepted: its first request may be on its way (a restart behind
    // SO_REUSEPORT hands us the connections already queued on our listener).
    arm_timer(Timer::idle, std::min(host_.config().idle_timeout_s, kFirstRequestGraceOnShutdown));
  }
  close_after_ = true;
}

std::size_t ClientConnection::client_input() const { return evbuffer_get_length(client_->input()); }
std::size_t ClientConnection::client_output() const { return evbuffer_get_length(client_->output()); }

// ---------------------------------------------------------------- events

void ClientConnection::on_stream_readable(Stream& stream) {
  if (dead_) return;
  if (is_client(stream)) {
    switch (phase_) {
      case Phase::reading_head: read_request_head(); break;
      case Phase::exchanging: pump_request_body(); break;
      case Phase::connecting_upstream:
      case Phase::finishing: update_flow(); break;
      case Phase::lingering: evbuffer_drain(client_->input(), client_input()); break;
    }
    if (dead_) return;
    if (client_->peer_closed()) client_closed_input();
    return;
  }
  if (!request_) return;  // no upstream stream outlives its request here
  if (!request_->response_head_sent) read_response_head();
  if (dead_ || !request_) return;  // finished: request_ is gone
  if (request_->response_head_sent && !request_->response_done) pump_response_body();
  if (dead_ || !request_) return;
  if (upstream_ && upstream_->stream->peer_closed() && !request_->response_done) {
    if (request_->response_head_sent && response_parser_.body_until_eof()) {
      response_parser_.finish_at_eof();
      response_complete();
    } else {
      upstream_failed("upstream closed the connection before the response was complete", false);
    }
  }
}

void ClientConnection::on_stream_drained(Stream& stream) {
  if (dead_) return;
  if (is_client(stream) && phase_ == Phase::finishing && client_output() == 0) {
    finish_exchange();
    return;
  }
  update_flow();
}

void ClientConnection::on_stream_error(Stream& stream, const std::string& what) {
  if (dead_) return;
  if (stream.handshake_failed()) host_.handshake_failed(is_client(stream));
  if (is_client(stream)) {
    destroy();  // the client is gone; destroy() records what was in flight
    return;
  }
  if (phase_ == Phase::connecting_upstream && !stream.handshake_failed()) {
    upstream_connect_failed(what, false);
    return;
  }
  upstream_failed(what, false);
}

void ClientConnection::on_stream_connected(Stream& stream) {
  if (dead_ || is_client(stream)) return;  // a client's TLS handshake finishing needs nothing from us
  host_.metrics().upstream_connected(Clock::now() - upstream_->connect_started);
  send_request_head();
}

void ClientConnection::client_closed_input() {
  switch (phase_) {
    case Phase::reading_head:
    case Phase::lingering:
      destroy();
      return;
    case Phase::connecting_upstream:
    case Phase::exchanging:
      if (!request_->request_done) {
        // Aborted mid-request: the upstream request is dropped with its
        // connection, so nothing half-sent is completed on the client's behalf.
        destroy();
        return;
      }
      close_after_ = true;
      return;
    case Phase::finishing:
      close_after_ = true;
      return;
  }
}

// ---------------------------------------------------------------- request

void ClientConnection::read_request_head() {
  std::size_t available = client_input();
  if (available == 0) return;
  if (!request_) {
    request_.emplace();
    spare_buffers_.give_to(*request_);
    request_->record.started = Clock::now();
    request_->started_unix_ns = unix_now_ns();
    arm_timer(Timer::header, host_.config().header_timeout_s);
  }
  const std::size_t limit = host_.config().max_header_bytes;
  // Checked before looking for the end of the head: a TLS ClientHello or
  // garbage may well contain a CRLFCRLF.
  std::size_t peek = std::min<std::size_t>(available, 40);
  const char* start = reinterpret_cast<const char*>(evbuffer_pullup(client_->input(), static_cast<ev_ssize_t>(peek)));
  if (!plausible_request_start({start, peek})) {
    reject_unparseable_start({start, peek});
    return;
  }
  HeadScanner::Status scan = scan_new_bytes(request_scanner_, client_->input());
  if (scan != HeadScanner::Status::complete) {
    // Bare LF or CR, NUL, obs-fold, an HTTP/0.9 request line: refused as
    // soon as seen, not at --header-timeout (such a head may never show the
    // blank line we wait for).
    if (scan == HeadScanner::Status::malformed) {
      reject_connection(RejectReason::malformed_head, 400, fmt::format("malformed request: {}", request_scanner_.problem()));
      return;
    }
    if (available > limit)
      reject_connection(RejectReason::head_too_large, 431, fmt::format("request head larger than {} bytes", limit));
    return;
  }
  std::size_t head_length = request_scanner_.scanned();
  request_scanner_.reset();
  if (head_length > limit) {
    reject_connection(RejectReason::head_too_large, 431, fmt::format("request head larger than {} bytes", limit));
    return;
  }
  const char* bytes = reinterpret_cast<const char*>(evbuffer_pullup(client_->input(), static_cast<ev_ssize_t>(head_length)));
  request_parser_.reset();
  bool parsed = request_parser_.parse_head({bytes, head_length});
  evbuffer_drain(client_->input(), head_length);
  if (!parsed) {
    // Where this request ends is unknown: nothing after it can be trusted
    // (reject_connection closes). A Go registry's own HTTP server refuses
    // these heads before its handlers run, so they count as rejected
    // connections, never under registry_http_*.
    int status = request_parser_.refusal_status();
    reject_connection(head_refusal_reason(status), status,
                      status == 400 ? "malformed request: " + request_parser_.error() : request_parser_.error());
    return;
  }
  start_exchange(request_parser_.head());
}

void ClientConnection::start_exchange(const MessageHead& request) {
  identify_request(request_->record, request_->request_id_hex, request, host_.request_ids());
  request_->request_done = request_parser_.complete();
  close_after_ = close_after_ || !request.keep_alive || host_.draining();
  const Config& config = host_.config();
  if (auto refusal = on_request_head(*request_, request,
                                     {client_address_, host_.client_scheme(), config.trust_forwarded, &config.listen})) {
    if (refusal->close_after) close_after_ = true;
    send_local_response(*refusal);
    return;
  }
  request_->record.request_body_start = Clock::now();
  if (request_->request_done) request_->record.request_body_end = request_->record.request_body_start;
  host_.metrics().request_started(request_->record.handler);
  request_->in_flight = true;
  // A request to an upload URL keeps its session from being counted as
  // abandoned for as long as it streams (a whole layer is one PATCH).
  if (request_->route.handler == Handler::blob_upload_chunk)
    request_->session_request_in_table =
        host_.sessions().request_began(request_->route.reference, request_->started_unix_ns);

  request_->record.needed_upstream_connection = true;
  if (auto idle = host_.upstream().take_idle(this)) {
    upstream_ = std::move(idle);
    send_request_head();
    return;
  }
  connect_upstream();
}

void ClientConnection::connect_upstream(UpstreamSlot slot) {
  UpstreamSource::Dialled dialled = host_.upstream().connect(this, this, std::move(slot));
  if (dialled.queued) {
    // upstream_turn() follows, or the queue timeout.
    request_->queued = true;
    request_->queued_since = Clock::now();
    phase_ = Phase::connecting_upstream;
    arm_timer(Timer::queue, host_.config().upstream_queue_timeout_s);
    update_flow();
    return;
  }
  upstream_ = std::move(dialled.connection);
  if (!upstream_) {
    upstream_connect_failed("connect: " + dialled.error, false);
    return;
  }
  phase_ = Phase::connecting_upstream;
  // Replaced by the response timeout once connected (send_request_head).
  arm_timer(Timer::upstream, host_.config().upstream_connect_timeout_s);
  update_flow();
}

void ClientConnection::send_request_head() {
  phase_ = Phase::exchanging;
  response_scanner_.reset();  // this connection's answer starts now
  upstream_->stream->set_low_watermark(host_.limits().low_watermark);
  evbuffer_add(upstream_->stream->output(), request_->upstream_head.data(), request_->upstream_head.size());
  if (request_->request_done)
    arm_timer(Timer::upstream, host_.config().upstream_timeout_s);
  else
    arm_body_timer();
  pump_request_body();
}

void ClientConnection::pump_request_body() {
  if (!request_->request_done) {
    BodyMove move = move_body(request_parser_, client_->input(), upstream_->stream->output());
    request_->record.request_body_bytes += move.body_bytes;
    if (move.moved > 0) request_->body_bytes_forwarded = true;
    if (!move.ok) {
      send_local_response({400, "UNSUPPORTED", "malformed request body: " + request_parser_.error()});
      return;
    }
    if (request_parser_.complete()) {
      request_->request_done = true;
      request_->record.request_body_end = Clock::now();
      if (!request_->response_head_sent) arm_timer(Timer::upstream, host_.config().upstream_timeout_s);
    }
  }
  if (!upstream_->stream->flush()) {
    upstream_failed("write to upstream failed", false);
    return;
  }
  update_flow();
}

// ---------------------------------------------------------------- response

void ClientConnection::read_response_head() {
  // Bounded: each round consumes one interim (1xx) head or returns.
  for (int round = 0; round < 16; ++round) {
    evbuffer* input = upstream_->stream->input();
    std::size_t available = evbuffer_get_length(input);
    if (available == 0) return;
    HeadScanner::Status scan = scan_new_bytes(response_scanner_, input);
    if (scan == HeadScanner::Status::malformed) {
      upstream_failed(fmt::format("malformed upstream response: {}", response_scanner_.problem()), false);
      return;
    }
    if (scan == HeadScanner::Status::need_more) {
      if (available > kResponseHeadLimits.max_bytes) upstream_failed("upstream response head too large", false);
      return;
    }
    std::size_t head_length = response_scanner_.scanned();
    response_scanner_.reset();
    const char* bytes = reinterpret_cast<const char*>(evbuffer_pullup(input, static_cast<ev_ssize_t>(head_length)));
    response_parser_.reset(request_->head_request);
    bool parsed = response_parser_.parse_head({bytes, head_length});
    evbuffer_drain(input, head_length);
    if (!parsed) {
      upstream_failed("malformed upstream response: " + response_parser_.error(), false);
      return;
    }
    const MessageHead& head = response_parser_.head();
    if (head.status >= 100 && head.status < 200) {
      if (head.status == 101) {
        upstream_failed("upstream switched protocols, which is not supported", false);
        return;
      }
      // 100 Continue and friends: relay and wait for the final head.
      std::string interim = client_response_head(
          head, {host_.config().upstream.authority, host_.client_scheme(), request_->client_host, false});
      evbuffer_add(client_->output(), interim.data(), interim.size());
      if (!client_->flush()) {
        destroy();
        return;
      }
      continue;
    }
    request_->response_head_sent = true;
    request_->record.status = head.status;
    request_->record.reached_upstream = true;
    request_->record.upstream_headers = Clock::now();
    meter_.begin(request_->route.handler, request_->record.method, head);
    // Only error and manifest bodies are looked at; blob bytes pass unseen.
    response_parser_.set_payload_observer(meter_.wants_payload() ? &meter_ : nullptr);
    if (auto budget = rate_limit_of(head)) host_.metering().rate_limit_seen(*budget);
    ResponseHeadPlan plan = on_response_head(
        *request_, head,
        {host_.config().upstream.authority, host_.client_scheme(), close_after_, response_parser_.body_until_eof()});
    // Keeps the open-session table current.
    if (plan.touched_upload_id)
      host_.sessions().touch(*plan.touched_upload_id, request_->route.repository, plan.session_token, unix_now_ns());
    arm_body_timer();
    close_after_ = plan.close_after;
    evbuffer_add(client_->output(), plan.client_head.data(), plan.client_head.size());
    request_->record.response_body_start = Clock::now();
    if (response_parser_.complete()) {
      response_complete();
      return;
    }
    client_->set_low_watermark(host_.limits().low_watermark);
    return;
  }
  upstream_failed("too many interim responses", false);
}

void ClientConnection::pump_response_body() {
  BodyMove move = move_body(response_parser_, upstream_->stream->input(), client_->output());
  request_->record.response_body_bytes += move.body_bytes;
  if (!move.ok) {
    upstream_failed("malformed upstream response body: " + response_parser_.error(), false);
    return;
  }
  if (!client_->flush()) {
    destroy();
    return;
  }
  if (response_parser_.complete()) {
    response_complete();
    return;
  }
  update_flow();
}

void ClientConnection::response_complete() {
  request_->response_done = true;
  meter_.complete();
  request_->record.error = meter_.error();
  bool clean = request_->upstream_reusable && request_->request_done && evbuffer_get_length(upstream_->stream->input()) == 0 &&
               !upstream_->stream->peer_closed();
  release_upstream(clean);
  if (!request_->request_done) close_after_ = true;
  enter_finishing();
}

// The response is complete on our side: wait (bounded by the body timer: a
// client that stops reading must not hold us forever) until its last byte
// has been written to the client, then finish.
void ClientConnection::enter_finishing() {
  phase_ = Phase::finishing;
  arm_body_timer();
  client_->set_low_watermark(0);
  if (!client_->flush()) {
    destroy();
    return;
  }
  if (client_output() == 0) {
    finish_exchange();
    return;
  }
  update_flow();
}

void ClientConnection::finish_exchange() {
  record_exchange();
  if (close_after_ || host_.draining() || client_->peer_closed()) {
    close_connection(request_->request_done);
    return;
  }
  // Ready for the next request on this keep-alive connection: the next
  // request gets a new context.
  answered_a_request_ = true;
  spare_buffers_.take_from(*request_);
  request_.reset();
  meter_.reset();
  client_->release_idle_buffers();
  phase_ = Phase::reading_head;
  client_->set_low_watermark(host_.limits().low_watermark);
  arm_timer(Timer::idle, host_.config().idle_timeout_s);
  update_flow();
  if (client_input() > 0) read_request_head();  // a pipelined request is already here
}

}  // namespace regmeter
