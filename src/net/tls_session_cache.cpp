#include "net/tls_session_cache.h"

#include <openssl/ssl.h>

namespace regmeter {

namespace {
int cache_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}
}  // namespace

TlsSessionCache::~TlsSessionCache() { SSL_SESSION_free(latest_); }

void TlsSessionCache::enable(SSL_CTX* context) {
  cache_index();  // allocated before any thread races for it
  SSL_CTX_set_session_cache_mode(context, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(context, &TlsSessionCache::on_new_session);
}

void TlsSessionCache::attach(SSL* ssl) {
  SSL_set_ex_data(ssl, cache_index(), this);
  if (latest_ && SSL_SESSION_is_resumable(latest_)) SSL_set_session(ssl, latest_);
}

int TlsSessionCache::on_new_session(SSL* ssl, SSL_SESSION* session) {
  auto* cache = static_cast<TlsSessionCache*>(SSL_get_ex_data(ssl, cache_index()));
  if (!cache) return 0;  // not ours to keep
  // A copy: the connection's own session object is marked not resumable
  // when the connection is freed without a close_notify (how pooled
  // upstream connections end), which would spoil the cached one too.
  SSL_SESSION* copy = SSL_SESSION_dup(session);
  if (!copy) return 0;
  SSL_SESSION_free(cache->latest_);
  cache->latest_ = copy;
  return 0;  // OpenSSL keeps (and frees) its own reference
}

}  // namespace regmeter
