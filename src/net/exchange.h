// One client connection and the request/response exchanges on it, in
// phases: read head → classify → get an upstream connection → forward the
// head and stream the body → read the response head → stream the body →
// the last byte reaches the client → finish (metrics) → next request.
// finish() runs exactly once per request on every path, errors included.
//
// The decisions of each phase are pure functions (core/request_phases.h)
// over the request's RequestContext; this class moves the bytes, runs the
// timers and reaches the process only through its ConnectionHost. Its
// members live in exchange.cpp (events, request, response), and by concern
// in exchange_failures.cpp (retries, local answers, rejections),
// exchange_flow.cpp (backpressure, timers, lingering, destroy),
// exchange_finish.cpp (recording) and exchange_queue.cpp (the upstream
// connection queue).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "core/http_head.h"
#include "core/metrics.h"
#include "core/request_context.h"
#include "core/request_phases.h"
#include "core/response_meter.h"
#include "core/route.h"
#include "core/upload_session.h"
#include "net/stream.h"
#include "net/upstream.h"

namespace regmeter {

class ConnectionHost;
class ConnectionTimer;

class ClientConnection : private StreamHandler, private UpstreamWaiter {
 public:
  // How long a connection that has sent nothing yet may still send its first
  // request once the server is stopping (Go's http.Server waits 5 s for
  // such connections; a restart should not wait that long for an idle one).
  static constexpr double kFirstRequestGraceOnShutdown = 2.0;

  // `client` is the accepted connection's stream (its handler becomes this);
  // null when it could not be set up (start() then ends at once).
  ClientConnection(ConnectionHost& host, std::unique_ptr<Stream> client, std::string client_address);
  ~ClientConnection() override;
  ClientConnection(const ClientConnection&) = delete;
  ClientConnection& operator=(const ClientConnection&) = delete;

  void start();
  // The server is stopping: close now when idle between requests, else
  // after this exchange. A connection that has not sent its first request
  // yet gets a short grace for it (it may be in flight: closing now would
  // reset it).
  void begin_shutdown();

 private:
  enum class Phase {
    reading_head,         // waiting for (the rest of) a request head
    connecting_upstream,  // head parsed; upstream connection being opened
    exchanging,           // request and/or response bytes moving
    finishing,            // response complete; waiting for it to reach the client
    lingering,            // answered and closing: discarding what the client still sends
  };
  enum class Timer { none, idle, header, upstream, body, linger, queue };

  // StreamHandler: events of the client stream and of the upstream stream.
  void on_stream_readable(Stream& stream) override;
  void on_stream_drained(Stream& stream) override;
  void on_stream_error(Stream& stream, const std::string& what) override;
  void on_stream_connected(Stream& stream) override;
  void on_plain_http_refused(Stream& stream) override;

  void read_request_head();
  void start_exchange(const MessageHead& request);
  void connect_upstream(UpstreamSlot slot = {});
  // UpstreamWaiter: this request's turn in the --upstream-max-connections queue.
  void upstream_turn(std::unique_ptr<UpstreamConnection> reused, UpstreamSlot slot) override;
  void queue_timed_out();
  void send_request_head();
  void pump_request_body();
  void read_response_head();
  void pump_response_body();
  void response_complete();
  void enter_finishing();
  void finish_exchange();
  // Hands the exchange to the metrics (and its upload session, if any).
  void record_exchange();
  // Hands a manifest or blob exchange to the image pull table (net/metering.cpp).
  void record_pull_request();
  void write_access_log();
  void upstream_connect_failed(const std::string& what, bool timed_out);
  void upstream_failed(const std::string& what, bool timed_out);
  void client_closed_input();
  // After the last response; lingers when the request was not read to its end.
  void close_connection(bool request_read);

  // A response generated here (errors) to a request that was parsed: counted
  // as a request (handler "other" when not yet classified); closes the
  // connection afterwards when the request was not read to its end.
  void send_local_response(const LocalReply& reply);
  // A connection refused before a request on it could be parsed: answered,
  // closed, and counted as a rejection (metrics, access log), not a request.
  void reject_connection(RejectReason reason, int status, std::string_view message);
  void reject_unparseable_start(std::string_view first_bytes);
  void count_rejection(RejectReason reason, int status);
  void queue_local_response(const LocalReply& reply);
  void release_upstream(bool reusable);
  void update_flow();
  void arm_timer(Timer purpose, double seconds);
  void arm_body_timer();
  std::uint64_t progress() const;
  void body_stalled();
  static void on_timer(void* arg);
  void destroy();  // deletes this; return right after calling it

  bool is_client(const Stream& stream) const { return &stream == client_.get(); }
  std::size_t client_input() const;
  std::size_t client_output() const;

  ConnectionHost& host_;
  std::unique_ptr<Stream> client_;
  std::unique_ptr<UpstreamConnection> upstream_;
  std::string client_address_;
  std::unique_ptr<ConnectionTimer> timer_;
  Timer timer_purpose_ = Timer::none;
  std::uint64_t progress_mark_ = 0;  // progress() when the body timer was armed

  Phase phase_ = Phase::reading_head;
  HeadScanner request_scanner_{true};  // the head being received; each byte scanned once
  HeadScanner response_scanner_{false};
  MessageParser request_parser_;  // with --max-header-bytes / --max-header-fields (constructor)
  MessageParser response_parser_{MessageParser::Kind::response};

  // The request in progress: from the first byte of its head to its finish.
  std::optional<RequestContext> request_;
  RequestBuffers spare_buffers_;  // the last request's strings, for the next one
  ResponseMeter meter_;  // what the response body says; its buffers are kept for the next request
  bool close_after_ = false;
  bool answered_a_request_ = false;  // begin_shutdown: an idle keep-alive connection, not a fresh one
  bool dead_ = false;  // destroy() ran; deletion is pending
};

}  // namespace regmeter
