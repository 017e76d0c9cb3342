// Connections to the one configured upstream: new ones and a per-thread
// pool of idle keep-alive ones. Only addresses the configured --upstream
// name resolves to are ever dialled (upstream_resolver.h keeps them
// current); nothing a client sends can point us elsewhere.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "net/stream.h"

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

struct UpstreamConnection {
  std::unique_ptr<Stream> stream;
  unsigned requests_served = 0;  // > 0: reused from the pool
  std::chrono::steady_clock::time_point connect_started;
  UpstreamAddress address;  // the one dialled
  std::chrono::steady_clock::time_point idle_since;
};

class UpstreamPool : private StreamHandler {
 public:
  // `tls_context` non-null: connections speak TLS, verifying `server_name`.
  UpstreamPool(event_base* base, UpstreamResolver& resolver, std::size_t max_idle, SSL_CTX* tls_context = nullptr,
               std::string server_name = {});
  ~UpstreamPool() override;
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  // A live idle connection, most recently used first; nullptr when none.
  std::unique_ptr<UpstreamConnection> take_idle(StreamHandler* new_handler);
  // Starts a new connection reporting to `handler`; nullptr and `error` set
  // when it fails at once.
  std::unique_ptr<UpstreamConnection> connect(StreamHandler* handler, std::string& error);
  // Keeps a connection that finished a request cleanly for the next one.
  void give_back(std::unique_ptr<UpstreamConnection> connection);
  void clear();

  std::size_t idle_count() const { return idle_.size(); }
  // The upstream as configured ("registry:5000"), for logs and errors.
  const std::string& description() const;
  std::size_t address_count() const;
  // A connect to `connection`'s address failed or timed out: that address
  // is skipped by this thread's new connections for a while (when others
  // are left), and the resolver looks the name up again soon.
  void connect_failed(const UpstreamConnection& connection);

 private:
  // An idle connection that becomes readable was closed (or misbehaves).
  void on_stream_readable(Stream& stream) override;
  void on_stream_drained(Stream&) override {}
  void on_stream_error(Stream& stream, const std::string& what) override;
  void drop(Stream& stream);
  static void on_sweep(int, short, void* arg);

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
  std::size_t max_idle_;
  std::vector<std::unique_ptr<UpstreamConnection>> idle_;
  event* sweep_timer_ = nullptr;
  SSL_CTX* tls_context_;
  std::string server_name_;
};

}  // namespace regmeter
