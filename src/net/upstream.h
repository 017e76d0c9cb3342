// Connections to the one configured upstream: new ones and a per-thread
// pool of idle keep-alive ones, kept up to the thread's share of
// --max-connections (so a thread never closes a connection it could reuse)
// for --upstream-idle-timeout. With --upstream-max-connections, a request
// that finds no idle connection and no free slot waits in the process-wide
// FIFO queue (upstream_limit.h) until its turn. Only addresses the configured --upstream
// name resolves to are ever dialled (upstream_resolver.h keeps them
// current); nothing a client sends can point us elsewhere.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/config.h"
#include "core/upstream_budget.h"
#include "net/stream.h"
#include "net/tls_session_cache.h"

struct event;
struct event_base;
typedef struct ssl_ctx_st SSL_CTX;

namespace regmeter {

struct UpstreamAddress {
  sockaddr_storage storage{};
  int length = 0;
  std::string description;  // "127.0.0.1:5000"
};

using AddressList = std::vector<UpstreamAddress>;

// Every address HOST:PORT resolves to, in the resolver's order, duplicates
// dropped (blocking: start-up and the resolver thread only). `passive` for
// addresses to listen on. Throws std::runtime_error with the reason.
AddressList resolve_all(const HostPort& where, bool passive = false);
// The first of those.
UpstreamAddress resolve_address(const HostPort& where, bool passive);
bool same_address(const UpstreamAddress& a, const UpstreamAddress& b);

class UpstreamResolver;
class UpstreamLimiter;
class UpstreamPool;

// One open upstream connection's claim on the pool's count (and, under a
// cap, on one of the process's slots). Move-only; released on destruction.
class UpstreamSlot {
 public:
  UpstreamSlot() = default;
  UpstreamSlot(UpstreamSlot&& other) noexcept : pool_(std::exchange(other.pool_, nullptr)) {}
  UpstreamSlot& operator=(UpstreamSlot&& other) noexcept {
    if (this != &other) {
      reset();
      pool_ = std::exchange(other.pool_, nullptr);
    }
    return *this;
  }
  ~UpstreamSlot() { reset(); }
  explicit operator bool() const { return pool_ != nullptr; }
  void reset();

 private:
  friend class UpstreamPool;
  explicit UpstreamSlot(UpstreamPool* pool);
  UpstreamPool* pool_ = nullptr;
};

struct UpstreamConnection;

// A request waiting in the queue for an upstream connection.
class UpstreamWaiter {
 public:
  // Its turn: `reused` is an open connection to send on as it is; or null,
  // and `slot` is the right to dial a new one (pass it to connect()).
  virtual void upstream_turn(std::unique_ptr<UpstreamConnection> reused, UpstreamSlot slot) = 0;

 protected:
  ~UpstreamWaiter() = default;
};

struct UpstreamConnection {
  UpstreamSlot slot;  // first: released after the stream has closed
  std::unique_ptr<Stream> stream;
  unsigned requests_served = 0;  // > 0: reused from the pool
  std::chrono::steady_clock::time_point connect_started;
  UpstreamAddress address;  // the one dialled
  std::chrono::steady_clock::time_point idle_since;
};

// Where a client connection gets its upstream connections: this thread's
// UpstreamPool (and through it the --upstream-max-connections queue), or a
// test's fake. Called a few times per request, never per byte.
class UpstreamSource {
 public:
  // A live idle connection, most recently used first; nullptr when none.
  virtual std::unique_ptr<UpstreamConnection> take_idle(StreamHandler* new_handler) = 0;
  struct Dialled {
    std::unique_ptr<UpstreamConnection> connection;  // connecting; reports to the handler
    bool queued = false;  // the cap is reached: waiter->upstream_turn() follows
    std::string error;    // neither: the connect failed at once
  };
  // Starts a new connection reporting to `handler`, with `slot` when the
  // request already holds one (its turn came, or a retry), else with a new
  // one; under the cap with none free, queues `waiter` instead.
  virtual Dialled connect(StreamHandler* handler, UpstreamWaiter* waiter, UpstreamSlot slot = {}) = 0;
  // `waiter` no longer waits (its client went, or its queue timeout): it
  // leaves the queue; a slot or connection already meant for it moves on.
  virtual void cancel_wait(UpstreamWaiter* waiter) = 0;
  // Keeps a connection that finished a request cleanly for the next one.
  virtual void give_back(std::unique_ptr<UpstreamConnection> connection) = 0;
  // The upstream as configured ("registry:5000"), for logs and errors.
  virtual const std::string& description() const = 0;
  virtual std::size_t address_count() const = 0;
  // A connect to `connection`'s address failed or timed out: that address
  // is skipped by this thread's new connections for a while (when others
  // are left), and the resolver looks the name up again soon.
  virtual void connect_failed(const UpstreamConnection& connection) = 0;

 protected:
  ~UpstreamSource() = default;
};

struct PoolOptions {
  std::size_t max_idle = 64;  // idle connections kept by this thread
  std::chrono::milliseconds idle_timeout{30000};
  std::size_t thread = 0;  // this pool's index in the limiter
};

class UpstreamPool final : public UpstreamSource, private StreamHandler {
 public:
  // `tls_context` non-null: connections speak TLS, verifying `server_name`.
  UpstreamPool(event_base* base, UpstreamResolver& resolver, UpstreamLimiter& limiter, PoolOptions options,
               SSL_CTX* tls_context = nullptr, std::string server_name = {});
  ~UpstreamPool() override;
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  std::unique_ptr<UpstreamConnection> take_idle(StreamHandler* new_handler) override;
  Dialled connect(StreamHandler* handler, UpstreamWaiter* waiter, UpstreamSlot slot = {}) override;
  void cancel_wait(UpstreamWaiter* waiter) override;
  void give_back(std::unique_ptr<UpstreamConnection> connection) override;
  void clear();

  std::size_t idle_count() const { return idle_.size(); }
  std::size_t open_count() const { return open_; }
  // The upstream as configured ("registry:5000"), for logs and errors.
  const std::string& description() const override;
  std::size_t address_count() const override;
  void connect_failed(const UpstreamConnection& connection) override;

 private:
  // An idle connection that becomes readable was closed (or misbehaves).
  void on_stream_readable(Stream& stream) override;
  void on_stream_drained(Stream&) override {}
  void on_stream_error(Stream& stream, const std::string& what) override;
  void drop(Stream& stream);
  static void on_sweep(int, short, void* arg);
  static void on_wake(int fd, short, void* arg);
  friend class UpstreamSlot;
  void slot_freed();
  UpstreamSlot acquire_slot();  // empty under the cap with none free
  // Grants, handed-over connections and make-room requests, from the loop.
  void serve_turns();
  void idle_changed();
  void publish_gauges();

  event_base* base_;
  void mark_down(const UpstreamAddress& address);
  bool is_down(const UpstreamAddress& address, std::chrono::steady_clock::time_point now) const;

  UpstreamResolver& resolver_;
  std::size_t next_address_ = 0;
  struct DownAddress {
    UpstreamAddress address;
    std::chrono::steady_clock::time_point until;
  };
  std::vector<DownAddress> down_;  // addresses whose last connect failed, recently
  UpstreamLimiter& limiter_;
  UpstreamBudget* budget_;  // null: no cap
  PoolOptions options_;
  TlsSessionCache sessions_;  // before the connections: they point at it
  std::size_t open_ = 0;      // connections open (or about to be dialled) on this thread
  std::vector<std::unique_ptr<UpstreamConnection>> idle_;  // most recently used last
  struct Waiting {
    UpstreamBudget::Ticket ticket;
    UpstreamWaiter* waiter;
  };
  std::deque<Waiting> waiting_;  // this thread's queued requests, oldest first
  // Connections given back while this thread's request was the oldest in
  // the queue: delivered from the loop, not from inside give_back().
  std::vector<std::pair<UpstreamBudget::Ticket, std::unique_ptr<UpstreamConnection>>> handed_over_;
  event* sweep_timer_ = nullptr;
  event* wake_event_ = nullptr;
  double published_active_ = 0, published_idle_ = 0;
  SSL_CTX* tls_context_;
  std::string server_name_;
};

}  // namespace regmeter
