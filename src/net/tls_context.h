// TLS contexts for every hop, built in one place: toward clients (with the
// certificate swapped on SIGHUP), toward an https:// upstream (verification
// and session resumption), and the metrics port. The streams that use them
// are in net/tls_stream.h.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "core/config.h"

struct evhttp;
typedef struct ssl_ctx_st SSL_CTX;

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

// Every TLS context the configuration asks for. Loaded before anything is
// served (and by --check-config): a bad certificate is a configuration error.
struct TlsContexts {
  std::unique_ptr<ServerTlsContext> client;  // --tls-cert; null: plain HTTP toward clients
  SslContextPtr upstream;                    // an https:// --upstream
  SslContextPtr metrics;                     // --metrics-tls-cert
};
// Throws std::runtime_error whose text names the flag without its "--"
// ("tls-cert FILE: reason").
TlsContexts build_tls_contexts(const Config& config);

// SIGHUP: loads the client certificate and key again (when there are any)
// and logs what happened.
void reload_client_certificate(ServerTlsContext* client);

// The metrics port: evhttp accepts TLS with `context` (which must outlive it).
void serve_evhttp_over_tls(evhttp* http, SSL_CTX* context);

}  // namespace regmeter
