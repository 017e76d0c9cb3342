// TLS with OpenSSL 3 on libevent's OpenSSL bufferevents: the contexts for
// both hops, certificate reload, and TlsStream, the TLS kind of Stream.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "regmeter/config.h"
#include "regmeter/stream.h"

struct bufferevent;
struct event_base;
struct sockaddr;
typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace regmeter {

using SslContextPtr = std::shared_ptr<SSL_CTX>;

// TLS 1.2+, a modern cipher list, ALPN http/1.1, session resumption, and
// peers that close without close_notify read as a clean EOF. Throws
// std::runtime_error naming the file and OpenSSL's reason.
SslContextPtr make_server_context(const std::string& cert_file, const std::string& key_file,
                                  const std::string& client_ca_file);
// Verification on (system store, or `ca_file`), unless `insecure`.
SslContextPtr make_client_context(const std::string& ca_file, bool insecure);

// The certificate clients see, swappable while connections keep the old one
// (SIGHUP). Thread-safe.
class ServerTlsContext {
 public:
  ServerTlsContext(std::string cert_file, std::string key_file, std::string client_ca_file);
  SslContextPtr current() const;
  // Loads the files again; on failure keeps the old context and says why.
  bool reload(std::string& error);

 private:
  std::string cert_file_, key_file_, client_ca_file_;
  mutable std::mutex mutex_;
  SslContextPtr context_;
};

// Everything OpenSSL has queued about the last failure, as one line.
std::string take_openssl_errors();

class TlsStream final : public Stream {
 public:
  // Server side: wraps an accepted socket; the handshake runs first.
  static std::unique_ptr<Stream> accept(event_base* base, int fd, SSL_CTX* context, StreamHandler* handler);
  // Client side: connects, sets SNI and the name to verify (host name or IP).
  static std::unique_ptr<Stream> connect_to(event_base* base, const sockaddr* address, int address_length,
                                            SSL_CTX* context, const std::string& server_name,
                                            StreamHandler* handler, std::string& error);
  ~TlsStream() override;

  evbuffer* input() const override;
  evbuffer* output() const override;
  void set_reading(bool enabled) override;
  void set_low_watermark(std::size_t bytes) override;
  bool flush() override;
  bool idle_and_alive() override;
  void shutdown_write() override;
  bool handshake_failed() const override { return failed_ && !handshake_done_; }

 private:
  TlsStream(bufferevent* bev, StreamHandler* handler);
  static void on_read(bufferevent* bev, void* arg);
  static void on_write(bufferevent* bev, void* arg);
  static void on_event(bufferevent* bev, short what, void* arg);

  bufferevent* bev_;
  bool handshake_done_ = false;
};

}  // namespace regmeter
