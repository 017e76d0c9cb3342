#include "regmeter/tls.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

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
  // No read-ahead: libevent 2.1's OpenSSL bufferevent waits for the socket
  // to become readable and does not see records OpenSSL has already pulled
  // in; with read-ahead on, a request that came with the handshake's last
  // flight sat unread until the idle timeout (tests/bench/tls_bench.sh).
  if (SSL_CTX_set_cipher_list(context, kTls12Ciphers) != 1) {
    SSL_CTX_free(context);
    throw std::runtime_error("cannot set the cipher list: " + take_openssl_errors());
  }
  return context;
}

bool is_ip_address(const std::string& host) {
  in6_addr v6;
  in_addr v4;
  return inet_pton(AF_INET, host.c_str(), &v4) == 1 || inet_pton(AF_INET6, host.c_str(), &v6) == 1;
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

// ---------------------------------------------------------------- TlsStream

TlsStream::TlsStream(bufferevent* bev, StreamHandler* handler) : bev_(bev) {
  handler_ = handler;
  // Peers that vanish without close_notify are an EOF.
  bufferevent_openssl_set_allow_dirty_shutdown(bev_, 1);
  bufferevent_setcb(bev_, &TlsStream::on_read, &TlsStream::on_write, &TlsStream::on_event, this);
  // Let one wakeup decrypt many records, as the plain stream reads 256 KiB.
  bufferevent_set_max_single_read(bev_, SocketStream::kReadSlice);
  bufferevent_set_max_single_write(bev_, SocketStream::kReadSlice);
  bufferevent_enable(bev_, EV_WRITE);
  // Count bytes in and out (plaintext) as progress.
  auto count = [](evbuffer*, const evbuffer_cb_info* info, void* arg) {
    static_cast<TlsStream*>(arg)->transferred_ += info->n_added + info->n_deleted;
  };
  evbuffer_add_cb(bufferevent_get_input(bev_), count, this);
  evbuffer_add_cb(bufferevent_get_output(bev_), count, this);
}

TlsStream::~TlsStream() { bufferevent_free(bev_); }

std::unique_ptr<Stream> TlsStream::accept(event_base* base, int fd, SSL_CTX* context, StreamHandler* handler) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  SSL* ssl = SSL_new(context);
  // Deferred callbacks: a write queued from inside our code must not call
  // back into it before it returns.
  bufferevent* bev = bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
  if (!bev) {
    SSL_free(ssl);
    evutil_closesocket(fd);
    return nullptr;
  }
  return std::unique_ptr<Stream>(new TlsStream(bev, handler));
}

std::unique_ptr<Stream> TlsStream::connect_to(event_base* base, const sockaddr* address, int address_length,
                                              SSL_CTX* context, const std::string& server_name,
                                              StreamHandler* handler, std::string& error) {
  SSL* ssl = SSL_new(context);
  if (!is_ip_address(server_name)) {
    SSL_set_tlsext_host_name(ssl, server_name.c_str());  // SNI
    SSL_set1_host(ssl, server_name.c_str());             // the name the certificate must carry
  } else {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), server_name.c_str());
  }
  // A fresh SSL object per connection: reusing one across connects fails.
  bufferevent* bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
  if (!bev) {
    SSL_free(ssl);
    error = "cannot create a TLS connection";
    return nullptr;
  }
  std::unique_ptr<TlsStream> stream(new TlsStream(bev, handler));
  if (bufferevent_socket_connect(bev, const_cast<sockaddr*>(address), address_length) != 0) {
    error = std::strerror(errno);
    return nullptr;
  }
  if (int fd = bufferevent_getfd(bev); fd >= 0) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  return stream;
}

evbuffer* TlsStream::input() const { return bufferevent_get_input(bev_); }
evbuffer* TlsStream::output() const { return bufferevent_get_output(bev_); }

void TlsStream::set_reading(bool enabled) {
  if (enabled == reading_ || failed_) return;
  if (enabled && peer_closed_) return;
  reading_ = enabled;
  if (enabled) {
    bufferevent_enable(bev_, EV_READ);
  } else {
    bufferevent_disable(bev_, EV_READ);
  }
}

void TlsStream::set_low_watermark(std::size_t bytes) { bufferevent_setwatermark(bev_, EV_WRITE, bytes, 0); }

bool TlsStream::flush() { return !failed_; }  // the bufferevent writes by itself

bool TlsStream::idle_and_alive() {
  if (failed_ || peer_closed_ || !handshake_done_) return false;
  if (evbuffer_get_length(input()) > 0) return false;
  int fd = bufferevent_getfd(bev_);
  char byte;
  ssize_t n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0) return false;  // closed
  // Bytes waiting may be a TLS 1.3 session ticket, not a response: fine.
  return n > 0 || errno == EAGAIN || errno == EWOULDBLOCK;
}

void TlsStream::shutdown_write() {
  // Nothing to do: half-closing under TLS would need close_notify first, and
  // lingering only needs us to stop writing, which we do.
}

void TlsStream::on_read(bufferevent*, void* arg) {
  auto* self = static_cast<TlsStream*>(arg);
  self->handler_->on_stream_readable(*self);
}

void TlsStream::on_write(bufferevent*, void* arg) {
  auto* self = static_cast<TlsStream*>(arg);
  self->handler_->on_stream_drained(*self);
}

void TlsStream::on_event(bufferevent* bev, short what, void* arg) {
  auto* self = static_cast<TlsStream*>(arg);
  if (what & BEV_EVENT_CONNECTED) {
    self->handshake_done_ = true;
    self->handler_->on_stream_connected(*self);
    return;
  }
  if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
    self->peer_closed_ = true;
    self->reading_ = false;
    self->handler_->on_stream_readable(*self);
    return;
  }
  std::string reason;
  while (unsigned long code = bufferevent_get_openssl_error(bev)) {
    char text[256];
    ERR_error_string_n(code, text, sizeof text);
    if (!reason.empty()) reason += "; ";
    reason += text;
  }
  if (SSL* ssl = bufferevent_openssl_get_ssl(bev); ssl && !self->handshake_done_) {
    long verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK) reason = std::string("certificate verification failed: ") + X509_verify_cert_error_string(verify);
  }
  if (reason.empty()) reason = errno ? std::strerror(errno) : "connection failed";
  if (!self->handshake_done_) reason = "TLS handshake: " + reason;
  self->failed_ = true;
  self->reading_ = false;
  self->handler_->on_stream_error(*self, reason);
}

}  // namespace regmeter
