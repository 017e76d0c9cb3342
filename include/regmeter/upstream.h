// Connections to the one configured upstream: new ones and a per-thread
// pool of idle keep-alive ones. Only the address resolved at start is ever
// dialled; nothing a client sends can point us elsewhere.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "regmeter/config.h"
#include "regmeter/stream.h"

struct event;
struct event_base;
typedef struct ssl_ctx_st SSL_CTX;

namespace regmeter {

struct UpstreamAddress {
  sockaddr_storage storage{};
  int length = 0;
  std::string description;  // "127.0.0.1:5000"
};

// Resolves HOST:PORT to its first address (blocking: only used at start).
// `passive` for addresses to listen on. Throws std::runtime_error with the
// resolver's reason.
UpstreamAddress resolve_address(const HostPort& where, bool passive);

// Resolves the upstream once, at start.
inline UpstreamAddress resolve_upstream(const UpstreamUrl& url) { return resolve_address(url.address, false); }

struct UpstreamConnection {
  std::unique_ptr<Stream> stream;
  unsigned requests_served = 0;  // > 0: reused from the pool
  std::chrono::steady_clock::time_point connect_started;
  std::chrono::steady_clock::time_point idle_since;
};

class UpstreamPool : private StreamHandler {
 public:
  // `tls_context` non-null: connections speak TLS, verifying `server_name`.
  UpstreamPool(event_base* base, UpstreamAddress address, std::size_t max_idle, SSL_CTX* tls_context = nullptr,
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
  const UpstreamAddress& address() const { return address_; }

 private:
  // An idle connection that becomes readable was closed (or misbehaves).
  void on_stream_readable(Stream& stream) override;
  void on_stream_drained(Stream&) override {}
  void on_stream_error(Stream& stream, const std::string& what) override;
  void drop(Stream& stream);
  static void on_sweep(int, short, void* arg);

  event_base* base_;
  UpstreamAddress address_;
  std::size_t max_idle_;
  std::vector<std::unique_ptr<UpstreamConnection>> idle_;
  event* sweep_timer_ = nullptr;
  SSL_CTX* tls_context_;
  std::string server_name_;
};

}  // namespace regmeter
