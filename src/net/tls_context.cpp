#include "net/tls_context.h"
#include "net/tls_session_cache.h"

#include <memory>
#include <stdexcept>

#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "core/log.h"

namespace regmeter {

namespace {

// TLS 1.2 suites with forward secrecy and AEAD only (TLS 1.3 suites are
// OpenSSL's defaults, all modern).
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384";
constexpr unsigned char kAlpnHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

int select_http11(SSL*, const unsigned char** out, unsigned char* out_length, const unsigned char* offered,
                  unsigned int offered_length, void*) {
  unsigned char* chosen = nullptr;
  if (SSL_select_next_proto(&chosen, out_length, kAlpnHttp11, sizeof kAlpnHttp11, offered, offered_length) ==
      OPENSSL_NPN_NEGOTIATED) {
    *out = chosen;
    return SSL_TLSEXT_ERR_OK;
  }
  // A client offering only h2: go on without ALPN; it falls back to HTTP/1.1.
  return SSL_TLSEXT_ERR_NOACK;
}

SSL_CTX* new_context(const SSL_METHOD* method) {
  SSL_CTX* context = SSL_CTX_new(method);
  if (!context) throw std::runtime_error("cannot create a TLS context: " + take_openssl_errors());
  SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
  // Most peers close without close_notify; that is an EOF, not an error.
  SSL_CTX_set_options(context, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(context, SSL_MODE_RELEASE_BUFFERS);
  // Read-ahead and the write modes are set per connection by TlsStream
  // (tune_ssl), not here: the metrics port's bufferevent cannot use them.
  if (SSL_CTX_set_cipher_list(context, kTls12Ciphers) != 1) {
    SSL_CTX_free(context);
    throw std::runtime_error("cannot set the cipher list: " + take_openssl_errors());
  }
  return context;
}

}  // namespace

std::string take_openssl_errors() {
  std::string out;
  while (unsigned long code = ERR_get_error()) {
    char text[256];
    ERR_error_string_n(code, text, sizeof text);
    if (!out.empty()) out += "; ";
    out += text;
  }
  return out.empty() ? "unknown TLS error" : out;
}

SslContextPtr make_server_context(const std::string& cert_file, const std::string& key_file,
                                  const std::string& client_ca_file) {
  SslContextPtr context(new_context(TLS_server_method()), SSL_CTX_free);
  SSL_CTX* ctx = context.get();
  SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1)
    throw std::runtime_error(fmt::format("tls-cert {}: {}", cert_file, take_openssl_errors()));
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1)
    throw std::runtime_error(fmt::format("tls-key {}: {}", key_file, take_openssl_errors()));
  if (SSL_CTX_check_private_key(ctx) != 1)
    throw std::runtime_error(fmt::format("tls-key {}: does not match the certificate in {}", key_file, cert_file));
  // Resumption: a server-side session cache and tickets (OpenSSL's default).
  static const unsigned char kSessionContext[] = "regmeter";
  SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof kSessionContext - 1);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
  SSL_CTX_set_alpn_select_cb(ctx, &select_http11, nullptr);
  if (!client_ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, client_ca_file.c_str(), nullptr) != 1)
      throw std::runtime_error(fmt::format("tls-client-ca {}: {}", client_ca_file, take_openssl_errors()));
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(client_ca_file.c_str()))
      SSL_CTX_set_client_CA_list(ctx, names);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  return context;
}

SslContextPtr make_client_context(const std::string& ca_file, bool insecure) {
  SslContextPtr context(new_context(TLS_client_method()), SSL_CTX_free);
  SSL_CTX* ctx = context.get();
  SSL_CTX_set_alpn_protos(ctx, kAlpnHttp11, sizeof kAlpnHttp11);
  TlsSessionCache::enable(ctx);
  if (insecure) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    return context;
  }
  int loaded = ca_file.empty() ? SSL_CTX_set_default_verify_paths(ctx)
                               : SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr);
  if (loaded != 1)
    throw std::runtime_error(fmt::format("upstream-ca {}: {}", ca_file.empty() ? "(system store)" : ca_file,
                                         take_openssl_errors()));
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  return context;
}

ServerTlsContext::ServerTlsContext(std::string cert_file, std::string key_file, std::string client_ca_file)
    : cert_file_(std::move(cert_file)), key_file_(std::move(key_file)), client_ca_file_(std::move(client_ca_file)),
      context_(make_server_context(cert_file_, key_file_, client_ca_file_)) {}

SslContextPtr ServerTlsContext::current() const {
  std::lock_guard lock(mutex_);
  return context_;
}

bool ServerTlsContext::reload(std::string& error) {
  try {
    SslContextPtr fresh = make_server_context(cert_file_, key_file_, client_ca_file_);
    std::lock_guard lock(mutex_);
    context_ = std::move(fresh);  // open connections keep the context they started with
    return true;
  } catch (const std::exception& e) {
    error = e.what();
    return false;
  }
}

TlsContexts build_tls_contexts(const Config& config) {
  TlsContexts contexts;
  if (config.client_tls())
    contexts.client = std::make_unique<ServerTlsContext>(config.tls_cert_file, config.tls_key_file,
                                                         config.tls_client_ca_file);
  if (config.upstream_tls()) contexts.upstream = make_client_context(config.upstream_ca_file, config.upstream_insecure);
  if (!config.metrics_tls_cert_file.empty())
    contexts.metrics = make_server_context(config.metrics_tls_cert_file, config.metrics_tls_key_file, "");
  return contexts;
}

void reload_client_certificate(ServerTlsContext* client) {
  if (!client) {
    log_info("SIGHUP: nothing to reload (no --tls-cert)");
    return;
  }
  std::string error;
  if (client->reload(error))
    log_info("SIGHUP: TLS certificate and key reloaded; open connections keep theirs");
  else
    log_error("SIGHUP: TLS reload failed, keeping the previous certificate: {}", error);
}

void serve_evhttp_over_tls(evhttp* http, SSL_CTX* context) {
  // Scrapes often cross networks: each connection gets its own SSL object
  // on an OpenSSL bufferevent.
  evhttp_set_bevcb(http, [](event_base* loop, void* arg) -> bufferevent* {
    SSL* ssl = SSL_new(static_cast<SSL_CTX*>(arg));
    bufferevent* bev = bufferevent_openssl_socket_new(loop, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (bev) bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
  }, context);
}

}  // namespace regmeter
