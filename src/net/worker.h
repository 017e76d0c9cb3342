// One event-loop thread: its own listener (SO_REUSEPORT), its own upstream
// pool and its own metrics shard, so the request path shares no lock with
// other threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_set>

#include "core/config.h"
#include "core/exemplar.h"
#include "core/upload_session.h"
#include "net/access_log.h"
#include "net/connection_host.h"
#include "net/upstream.h"
#include "net/upstream_limit.h"

struct event;
struct event_base;
struct evconnlistener;
struct sockaddr;
typedef struct ssl_ctx_st SSL_CTX;
namespace prometheus {
class Counter;
}

namespace regmeter {

class ClientConnection;
class MetricsShard;
class ServerTlsContext;
class SharedMetering;

// Shared by all threads; prometheus-cpp counters are atomic.
struct TlsSetup {
  AccessLogSink* access_log = nullptr;      // null: --access-log off
  ServerTlsContext* client_side = nullptr;  // null: plain HTTP toward clients
  SSL_CTX* upstream_side = nullptr;         // null: plain HTTP toward the upstream
  prometheus::Counter* client_handshake_errors = nullptr;
  prometheus::Counter* upstream_handshake_errors = nullptr;
};

// Implements ConnectionHost for the connections it accepts.
class Worker final : public ConnectionHost {
 public:
  Worker(const Config& config, std::size_t index, MetricsShard& shard, UpstreamResolver& upstream,
         UpstreamLimiter& limiter, OpenSessionTable& sessions, const TlsSetup& tls, SharedMetering& metering);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Binds the client listener; `port` overrides config.listen.port (used so
  // that every thread shares the port a port-0 listen picked). Returns the
  // bound port. Throws std::runtime_error naming the reason.
  std::uint16_t listen(std::uint16_t port);
  int listener_fd() const;  // -1 before listen() and once draining
  void run();            // the event loop, until stopped
  void request_stop();   // from any thread: drain, then leave run()

  event_base* base() const { return base_; }  // for the app's timers and signals on thread 0
  std::size_t connection_count() const { return connections_.size(); }

  // ConnectionHost
  const Config& config() const override { return config_; }
  const FlowLimits& limits() const override { return limits_; }
  std::string_view client_scheme() const override { return tls_.client_side ? "https" : "http"; }
  bool draining() const override { return draining_; }
  MetricsShard& metrics() override { return shard_; }
  void request_finished(const Exchange& record) override;
  void handshake_failed(bool client_side) override;
  OpenSessionTable& sessions() override { return sessions_; }
  SharedMetering& metering() override { return metering_; }
  AccessLogBuffer& access_log() override { return access_log_; }
  RequestIdGenerator& request_ids() override { return request_ids_; }
  UpstreamSource& upstream() override { return *pool_; }
  std::unique_ptr<ConnectionTimer> make_timer(void (*fire)(void* arg), void* arg) override;
  void forget(ClientConnection* connection) override;

 private:
  static void on_accept(evconnlistener*, int fd, sockaddr* address, int length, void* arg);
  static void on_accept_error(evconnlistener* listener, void* arg);
  // Serves an accepted client socket.
  void adopt(int fd, const sockaddr* peer);
  // Accepts what the kernel already queued on our listener (closing the
  // listener would reset those connections).
  void accept_queued();
  // The stream for an accepted client socket: TLS when configured.
  std::unique_ptr<Stream> client_stream(int fd);
  static void on_stop(int, short, void* arg);
  static void on_grace_expired(int, short, void* arg);
  static void on_session_sweep(int, short, void* arg);
  static void on_pull_sweep(int, short, void* arg);
  static void on_access_log_flush(int, short, void* arg);
  void begin_drain();

  const Config& config_;
  std::size_t index_;
  MetricsShard& shard_;
  OpenSessionTable& sessions_;
  const TlsSetup& tls_;
  SharedMetering& metering_;
  AccessLogBuffer access_log_;
  event* access_log_timer_ = nullptr;
  RequestIdGenerator request_ids_;  // this thread's: ids need no synchronization
  FlowLimits limits_;
  event_base* base_;
  evconnlistener* listener_ = nullptr;
  std::unique_ptr<UpstreamPool> pool_;
  std::unordered_set<ClientConnection*> connections_;
  int stop_fd_ = -1;                // eventfd: request_stop() from any thread
  event* stop_event_ = nullptr;      // reads stop_fd_
  event* grace_timer_ = nullptr;
  event* session_sweep_timer_ = nullptr;  // thread 0 only
  event* pull_sweep_timer_ = nullptr;     // thread 0 only
  bool draining_ = false;
  std::size_t connection_limit_;     // this thread's share of --max-connections
  bool paused_at_limit_ = false;     // listener off until a connection closes
};

}  // namespace regmeter
