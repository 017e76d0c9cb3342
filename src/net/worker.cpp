#include "net/worker.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <fmt/format.h>
#include <prometheus/counter.h>

#include "net/exchange.h"
#include "net/metering.h"
#include "net/socket_address.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/request_context.h"  // unix_now_ns
#include "net/tls_context.h"
#include "net/tls_stream.h"
#include "net/timeval.h"

namespace regmeter {

namespace {
// listen(2) backlog of each thread's listener.
constexpr int kListenBacklog = 1024;
// One random prefix for the whole process, so ids differ across restarts
// and replicas while threads only number their own requests.
std::uint64_t process_request_id_prefix() {
  static const std::uint64_t prefix = random_request_id_prefix();
  return prefix;
}

std::string peer_ip(const sockaddr* address) {
  char text[INET6_ADDRSTRLEN] = "unknown";
  if (address->sa_family == AF_INET)
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(address)->sin_addr, text, sizeof text);
  else if (address->sa_family == AF_INET6)
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr, text, sizeof text);
  return text;
}

// A connection's timer on this thread's loop.
class EventTimer final : public ConnectionTimer {
 public:
  EventTimer(event_base* base, void (*fire)(void*), void* arg) : fire_(fire), arg_(arg) {
    event_ = event_new(base, -1, 0, &EventTimer::on_event, this);
  }
  ~EventTimer() override { event_free(event_); }
  EventTimer(const EventTimer&) = delete;
  EventTimer& operator=(const EventTimer&) = delete;
  void arm(double seconds) override {
    timeval tv = seconds_to_timeval(seconds);
    event_add(event_, &tv);
  }
  void cancel() override { event_del(event_); }

 private:
  static void on_event(int, short, void* self) {
    auto* timer = static_cast<EventTimer*>(self);
    timer->fire_(timer->arg_);
  }
  event* event_;
  void (*fire_)(void*);
  void* arg_;
};
}  // namespace

Worker::Worker(const Config& config, std::size_t index, MetricsShard& shard, UpstreamResolver& upstream,
               UpstreamLimiter& limiter, OpenSessionTable& sessions, const TlsSetup& tls, SharedMetering& metering)
    : config_(config), index_(index), shard_(shard), sessions_(sessions), tls_(tls), metering_(metering),
      access_log_(tls.access_log),
      request_ids_(process_request_id_prefix(), static_cast<std::uint16_t>(index)),
      base_(event_base_new()),
      connection_limit_((config.max_connections + config.threads - 1) / std::max(1u, config.threads)) {
  if (!base_) throw std::runtime_error("cannot create an event loop");
  // Idle upstream connections are kept up to this thread's share of client
  // connections: it can never use more at once, so none it keeps is
  // surplus, and a storm at steady concurrency reuses instead of dialling.
  // The idle timeout returns them after the storm.
  PoolOptions pool_options;
  pool_options.max_idle = connection_limit_;
  pool_options.idle_timeout =
      std::chrono::milliseconds(static_cast<std::int64_t>(config.upstream_idle_timeout_s * 1000));
  pool_options.thread = index;
  pool_ = std::make_unique<UpstreamPool>(base_, upstream, limiter, pool_options, tls.upstream_side,
                                         config.upstream.address.host);
  // Another thread asks this loop to stop by writing to an eventfd it
  // watches: libevent then needs no locks (no evthread_use_pthreads), which
  // every event_add/del on the request path would otherwise take.
  stop_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (stop_fd_ < 0) throw std::runtime_error(fmt::format("eventfd: {}", std::strerror(errno)));
  stop_event_ = event_new(base_, stop_fd_, EV_READ, &Worker::on_stop, this);
  event_add(stop_event_, nullptr);
  grace_timer_ = event_new(base_, -1, 0, &Worker::on_grace_expired, this);
  if (access_log_.enabled()) {
    // Lines leave this thread in batches; a quiet thread still hands its
    // last lines over within a quarter second.
    access_log_timer_ = event_new(base_, -1, EV_PERSIST, &Worker::on_access_log_flush, this);
    timeval quarter{0, 250000};
    event_add(access_log_timer_, &quarter);
  }
  if (index_ == 0) {
    // One thread looks for abandoned upload sessions, often enough that one
    // is counted within a few percent of the timeout.
    double every = std::clamp(config_.upload_session_timeout_s / 20, 0.1, 10.0);
    session_sweep_timer_ = event_new(base_, -1, EV_PERSIST, &Worker::on_session_sweep, this);
    timeval interval = seconds_to_timeval(every);
    event_add(session_sweep_timer_, &interval);
    if (metering_.tracks_pulls()) {
      // Idle pulls end within a few percent of --pull-session-idle.
      double pull_every = std::clamp(config_.pull_session_idle_s / 20, 0.05, 1.0);
      pull_sweep_timer_ = event_new(base_, -1, EV_PERSIST, &Worker::on_pull_sweep, this);
      timeval pull_interval = seconds_to_timeval(pull_every);
      event_add(pull_sweep_timer_, &pull_interval);
    }
  }
}

Worker::~Worker() {
  // Connections still open at exit (grace period over) are cut here.
  for (auto* connection : connections_) delete connection;
  connections_.clear();
  pool_.reset();
  if (listener_) evconnlistener_free(listener_);
  event_free(stop_event_);
  close(stop_fd_);
  event_free(grace_timer_);
  if (session_sweep_timer_) event_free(session_sweep_timer_);
  if (pull_sweep_timer_) event_free(pull_sweep_timer_);
  if (access_log_timer_) event_free(access_log_timer_);
  access_log_.flush();
  event_base_free(base_);
}

std::uint16_t Worker::listen(std::uint16_t port) {
  HostPort address = config_.listen;
  address.port = port;
  UpstreamAddress resolved = resolve_address(address, true);
  auto& storage = resolved.storage;
  int length = resolved.length;
  // One listener per thread on the same port: the kernel spreads new
  // connections across them, and no thread hands sockets to another.
  listener_ = evconnlistener_new_bind(
      base_, &Worker::on_accept, this,
      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE | LEV_OPT_REUSEABLE_PORT, kListenBacklog,
      reinterpret_cast<sockaddr*>(&storage), length);
  if (!listener_)
    throw std::runtime_error(fmt::format("{}: {}", address.to_string(),
                                         errno == EADDRINUSE ? "address already in use" : std::strerror(errno)));
  evconnlistener_set_error_cb(listener_, &Worker::on_accept_error);
  sockaddr_storage bound{};
  if (!bound_address(evconnlistener_get_fd(listener_), bound))
    throw std::runtime_error(fmt::format("{}: getsockname: {}", address.to_string(), std::strerror(errno)));
  return port_of(reinterpret_cast<const sockaddr*>(&bound));
}

int Worker::listener_fd() const { return listener_ ? evconnlistener_get_fd(listener_) : -1; }

std::unique_ptr<Stream> Worker::client_stream(int fd) {
  if (tls_.client_side) return TlsStream::accept(base_, fd, tls_.client_side->current().get(), nullptr);
  return std::make_unique<SocketStream>(base_, fd, nullptr);
}

void Worker::request_finished(const Exchange& record) { shard_.request_finished(record); }

void Worker::handshake_failed(bool client_side) {
  if (auto* counter = client_side ? tls_.client_handshake_errors : tls_.upstream_handshake_errors) counter->Increment();
}

std::unique_ptr<ConnectionTimer> Worker::make_timer(void (*fire)(void* arg), void* arg) {
  return std::make_unique<EventTimer>(base_, fire, arg);
}

void Worker::run() { event_base_dispatch(base_); }

void Worker::request_stop() {
  std::uint64_t one = 1;
  // Cannot fail short of a counter overflow (2^64 stop requests).
  [[maybe_unused]] ssize_t written = write(stop_fd_, &one, sizeof one);
}

void Worker::forget(ClientConnection* connection) {
  connections_.erase(connection);
  if (paused_at_limit_ && !draining_ && connections_.size() < connection_limit_) {
    paused_at_limit_ = false;
    evconnlistener_enable(listener_);
  }
  if (draining_ && connections_.empty()) event_base_loopexit(base_, nullptr);
  // Deleted from the loop, not here: callers up the stack still hold it.
  timeval now{0, 0};
  event_base_once(base_, -1, EV_TIMEOUT, [](int, short, void* arg) {
    delete static_cast<ClientConnection*>(arg);
  }, connection, &now);
}

void Worker::on_accept(evconnlistener*, int fd, sockaddr* address, int, void* arg) {
  auto* worker = static_cast<Worker*>(arg);
  if (worker->draining_) {
    evutil_closesocket(fd);
    return;
  }
  worker->adopt(fd, address);
  if (worker->connections_.size() >= worker->connection_limit_ && !worker->paused_at_limit_) {
    // At the limit: further connections wait in the kernel's backlog; the
    // ones we have keep being served.
    worker->paused_at_limit_ = true;
    evconnlistener_disable(worker->listener_);
    log_warn_limited("thread {}: {} connections (its share of --max-connections); new ones wait", worker->index_,
                     worker->connections_.size());
  }
}

void Worker::adopt(int fd, const sockaddr* peer) {
  auto* connection = new ClientConnection(*this, client_stream(fd), peer_ip(peer));
  connections_.insert(connection);
  connection->start();
}

void Worker::accept_queued() {
  int listen_fd = evconnlistener_get_fd(listener_);
  // Bounded by the listen backlog; at the connection limit they would only wait.
  for (int taken = 0; taken < kListenBacklog && connections_.size() < connection_limit_; ++taken) {
    sockaddr_storage peer{};
    socklen_t length = sizeof peer;
    int fd = accept4(listen_fd, reinterpret_cast<sockaddr*>(&peer), &length, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN: nothing more queued
    adopt(fd, reinterpret_cast<const sockaddr*>(&peer));
  }
}

void Worker::on_accept_error(evconnlistener* listener, void* arg) {
  auto* worker = static_cast<Worker*>(arg);
  int error = EVUTIL_SOCKET_ERROR();
  // Out of descriptors: keep serving the connections we have; stop
  // accepting for a second instead of spinning on the error.
  log_limited(LogLevel::error, "accept failed: {} (pausing accepts for 1 s)", evutil_socket_error_to_string(error));
  evconnlistener_disable(listener);
  timeval second{1, 0};
  event_base_once(worker->base_, -1, EV_TIMEOUT, [](int, short, void* listener_arg) {
    evconnlistener_enable(static_cast<evconnlistener*>(listener_arg));
  }, listener, &second);
}

void Worker::on_stop(int fd, short, void* arg) {
  std::uint64_t requests;
  [[maybe_unused]] ssize_t got = read(fd, &requests, sizeof requests);
  static_cast<Worker*>(arg)->begin_drain();
}

void Worker::begin_drain() {
  if (draining_) return;
  draining_ = true;
  if (listener_) {
    // With --reuse-port, the kernel keeps sending new connections to the
    // other instances' listeners once ours is closed; the ones it already
    // queued here would be reset by the close. Serve them (begin_shutdown
    // below gives each one request).
    accept_queued();
    evconnlistener_free(listener_);
    listener_ = nullptr;
  }
  pool_->clear();
  // Copy: begin_shutdown may remove idle connections from the set.
  std::vector<ClientConnection*> open(connections_.begin(), connections_.end());
  for (auto* connection : open) connection->begin_shutdown();
  if (connections_.empty()) {
    event_base_loopexit(base_, nullptr);
    return;
  }
  timeval grace = seconds_to_timeval(config_.shutdown_grace_s);
  event_add(grace_timer_, &grace);
}

void Worker::on_pull_sweep(int, short, void* arg) {
  auto* worker = static_cast<Worker*>(arg);
  worker->metering_.expire_pulls(Clock::now(), worker->shard_);
}

void Worker::on_session_sweep(int, short, void* arg) {
  auto* worker = static_cast<Worker*>(arg);
  std::int64_t now = unix_now_ns();
  auto timeout = static_cast<std::int64_t>(worker->config_.upload_session_timeout_s * 1e9);
  auto seconds = [](std::int64_t ns) { return std::max(0.0, static_cast<double>(ns) / 1e9); };
  for (const auto& [upload_id, entry] : worker->sessions_.take_expired(now, timeout)) {
    // Its duration ends at its last request: that is when the client gave up.
    worker->shard_.upload_session_closed(SessionOutcome::abandoned,
                                         seconds(entry.last_seen_unix_ns - entry.token.started_unix_ns),
                                         entry.bytes_received());
    worker->access_log_.add(AccessEvent{now,
                                        "upload_session_abandoned",
                                        {{"repository", std::string_view(entry.repository)},
                                         {"upload_session", std::string_view(upload_id)},
                                         {"bytes", entry.bytes_received()},
                                         {"age_s", seconds(now - entry.token.started_unix_ns)},
                                         {"idle_s", seconds(now - entry.last_seen_unix_ns)}}});
  }
}

void Worker::on_access_log_flush(int, short, void* arg) { static_cast<Worker*>(arg)->access_log_.flush(); }

void Worker::on_grace_expired(int, short, void* arg) {
  auto* worker = static_cast<Worker*>(arg);
  log_warn("thread {}: grace period over, closing {} connection(s)", worker->index_, worker->connections_.size());
  event_base_loopbreak(worker->base_);
}

}  // namespace regmeter
