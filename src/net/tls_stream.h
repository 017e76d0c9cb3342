// TlsStream, the TLS kind of Stream. TlsStream owns its socket and drives
// SSL_read/SSL_write itself (not libevent's OpenSSL bufferevent, which in 2.1
// decrypts only one or two records per wakeup and cannot use read-ahead).
// Its contexts come from net/tls_context.h.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "net/stream.h"

struct event;
struct event_base;
struct evbuffer;
struct sockaddr;
typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace regmeter {

class TlsSessionCache;

// Whether the first bytes of a connection can be a TLS handshake record
// (content type 22, then version 3.x; SSL 3.0 to TLS 1.3 all say 3.0-3.4):
// a ClientHello, as sent by clients that try HTTPS first.
bool looks_like_tls_handshake(std::string_view first_bytes);

class TlsStream final : public Stream {
 public:
  // Server side: wraps an accepted socket; the handshake runs first.
  static std::unique_ptr<Stream> accept(event_base* base, int fd, SSL_CTX* context, StreamHandler* handler);
  // Client side: connects, sets SNI and the name to verify (host name or IP).
  static std::unique_ptr<Stream> connect_to(event_base* base, const sockaddr* address, int address_length,
                                            SSL_CTX* context, const std::string& server_name,
                                            StreamHandler* handler, std::string& error,
                                            TlsSessionCache* sessions = nullptr);
  ~TlsStream() override;

  void set_reading(bool enabled) override;
  bool flush() override;
  bool idle_and_alive() override;
  void shutdown_write() override;
  bool handshake_failed() const override { return handshake_failed_; }

 private:
  // What OpenSSL is waiting for before a blocked operation can go on.
  enum class Wait { nothing, readable, writable };
  enum class Phase {
    connecting,
    handshaking,
    open,
    refused,  // plain HTTP on the TLS port: answered 400, dropping input until the client closes
  };

  TlsStream(event_base* base, int fd, SSL* ssl, Phase phase, StreamHandler* handler);
  static void on_read_event(int fd, short what, void* arg);
  static void on_write_event(int fd, short what, void* arg);
  void handle_readable();
  void handle_writable();
  void finish_connect();
  void handshake();
  bool first_bytes_are_tls();
  void refuse_plain_http();
  void drop_refused_input();
  void read_records();
  bool write_output();
  void update_events();
  void fail(const std::string& what);

  SSL* ssl_;
  Phase phase_;
  Wait handshake_wait_ = Wait::nothing;
  Wait read_wait_ = Wait::nothing;   // SSL_read's last WANT_* (key update, post-handshake messages)
  Wait write_wait_ = Wait::nothing;  // SSL_write's last WANT_*
  bool read_armed_ = false;
  bool write_armed_ = false;
  bool handshake_done_ = false;
  bool handshake_failed_ = false;
  bool screen_first_bytes_ = false;  // server side, until the first bytes have been looked at
  std::string error_;  // why write_output() failed
};

}  // namespace regmeter
