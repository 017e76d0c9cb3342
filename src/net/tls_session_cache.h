// TLS session resumption toward the upstream: each thread keeps the latest
// session its upstream handed out, and new connections offer it, so a burst
// of new upstream connections costs abbreviated handshakes (no certificate
// chain, no signature) instead of a full one each. One per UpstreamPool:
// single-threaded, no locks.
#pragma once

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_session_st SSL_SESSION;

namespace regmeter {

class TlsSessionCache {
 public:
  TlsSessionCache() = default;
  ~TlsSessionCache();
  TlsSessionCache(const TlsSessionCache&) = delete;
  TlsSessionCache& operator=(const TlsSessionCache&) = delete;

  // Once, on the client context: sessions go to the cache of the connection
  // that received them (OpenSSL's own client cache is not used: it is keyed
  // for servers and shared across threads).
  static void enable(SSL_CTX* context);
  // Before the handshake of a new connection: offers the latest session and
  // records sessions this connection receives here.
  void attach(SSL* ssl);

  bool has_session() const { return latest_ != nullptr; }

 private:
  static int on_new_session(SSL* ssl, SSL_SESSION* session);
  SSL_SESSION* latest_ = nullptr;
};

}  // namespace regmeter
