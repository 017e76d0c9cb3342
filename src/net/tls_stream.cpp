#include "net/tls_stream.h"
#include "net/tls_context.h"
#include "net/tls_session_cache.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <event2/buffer.h>
#include <event2/event.h>
#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/head_scanner.h"

namespace regmeter {

bool looks_like_tls_handshake(std::string_view first) {
  if (first.empty() || first[0] != 0x16) return false;
  if (first.size() >= 2 && first[1] != 0x03) return false;
  return first.size() < 3 || static_cast<unsigned char>(first[2]) <= 0x04;
}

// ---------------------------------------------------------------- TlsStream
//
// The stream owns its non-blocking socket and drives OpenSSL itself, like
// SocketStream drives readv: on readability it decrypts many records into
// input() per wakeup (read-ahead pulls up to kRecordBuffer bytes per read()),
// and flush() encrypts output() in large SSL_writes. Each event callback calls
// the handler at most once and as its last step, since the handler may destroy
// the stream.

namespace {

// Plaintext decrypted per wakeup, as SocketStream reads two slices.
constexpr std::size_t kReadBudget = 2 * SocketStream::kReadSlice;
// OpenSSL's read buffer with read-ahead: one read() fills it with as many
// records as have arrived, instead of a header and a body read per record.
// Four records, not a whole read slice: at the start of every SSL_read,
// OpenSSL 3 memmoves the unread rest of this buffer to its front, so a
// large buffer is copied over and over. perf of a 1 GiB TLS upload
// (2026-12-02): with 256 KiB, memmove/memcpy took 21 % of regmeter's CPU
// (~0.8x what AES took); with 64 KiB, a sixth of that (the SSL_read copy).
constexpr std::size_t kRecordBuffer = 64 * 1024;
// Bytes offered to one SSL_write: OpenSSL cuts them into full 16 KiB records
// (max_send_fragment's default is the protocol maximum). And the plaintext
// written per wakeup before other connections get a turn.
constexpr std::size_t kWriteChunk = SocketStream::kReadSlice;
constexpr std::size_t kWriteBudget = 4 * SocketStream::kReadSlice;

// Per connection, not on the SSL_CTX: the metrics port shares the server
// context and still runs on libevent's OpenSSL bufferevent, which read-ahead
// breaks (it waits for the socket and misses records OpenSSL already holds).
void tune_ssl(SSL* ssl) {
  SSL_set_read_ahead(ssl, 1);
  SSL_set_default_read_buffer_len(ssl, kRecordBuffer);
  // Partial writes: SSL_write returns after each whole record, so exactly the
  // bytes on the wire are drained. A retry after WANT_WRITE passes the same
  // bytes, but an append to output() may have moved them (evbuffer realigns or
  // regrows a chain).
  SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}

enum class Outcome { blocked_read, blocked_write, eof, error };

// What an SSL_* I/O call's failure means. `saved_errno` is errno right after
// the call. A peer that closes without close_notify is an EOF, like one that
// sends it (SSL_OP_IGNORE_UNEXPECTED_EOF turns most of those into
// ZERO_RETURN; the other forms are caught here).
Outcome classify(SSL* ssl, int rc, int saved_errno, std::string& error) {
  switch (SSL_get_error(ssl, rc)) {
    case SSL_ERROR_WANT_READ: return Outcome::blocked_read;
    case SSL_ERROR_WANT_WRITE: return Outcome::blocked_write;
    case SSL_ERROR_ZERO_RETURN: return Outcome::eof;
    case SSL_ERROR_SYSCALL:
      if (ERR_peek_error() == 0) {
        if (saved_errno == 0) return Outcome::eof;
        error = std::strerror(saved_errno);
        return Outcome::error;
      }
      break;
    case SSL_ERROR_SSL:
      if (ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        ERR_clear_error();
        return Outcome::eof;
      }
      break;
    default: break;
  }
  error = take_openssl_errors();
  return Outcome::error;
}

}  // namespace

TlsStream::TlsStream(event_base* base, int fd, SSL* ssl, Phase phase, StreamHandler* handler)
    : Stream(base, fd, handler, &TlsStream::on_read_event, &TlsStream::on_write_event), ssl_(ssl), phase_(phase) {
  tune_ssl(ssl_);
}

// Before Stream's destructor closes the socket (SSL_set_fd's BIO does not).
TlsStream::~TlsStream() { SSL_free(ssl_); }

std::unique_ptr<Stream> TlsStream::accept(event_base* base, int fd, SSL_CTX* context, StreamHandler* handler) {
  SSL* ssl = SSL_new(context);
  if (!ssl || SSL_set_fd(ssl, fd) != 1) {
    SSL_free(ssl);
    ::close(fd);
    ERR_clear_error();
    return nullptr;
  }
  SSL_set_accept_state(ssl);
  std::unique_ptr<TlsStream> stream(new TlsStream(base, fd, ssl, Phase::handshaking, handler));
  stream->screen_first_bytes_ = true;
  // The handshake starts when the ClientHello arrives, not here: the caller
  // is still being constructed and must not be called back yet.
  stream->handshake_wait_ = Wait::readable;
  stream->update_events();
  return stream;
}

std::unique_ptr<Stream> TlsStream::connect_to(event_base* base, const sockaddr* address, int address_length,
                                              SSL_CTX* context, const std::string& server_name,
                                              StreamHandler* handler, std::string& error,
                                              TlsSessionCache* sessions) {
  int fd = start_connect(address, address_length, error);
  if (fd < 0) return nullptr;
  // A fresh SSL object per connection: reusing one across connects fails.
  SSL* ssl = SSL_new(context);
  if (!ssl || SSL_set_fd(ssl, fd) != 1) {
    SSL_free(ssl);
    ::close(fd);
    error = "cannot create a TLS connection: " + take_openssl_errors();
    return nullptr;
  }
  if (!is_ip_literal(server_name)) {
    SSL_set_tlsext_host_name(ssl, server_name.c_str());  // SNI
    SSL_set1_host(ssl, server_name.c_str());             // the name the certificate must carry
  } else {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), server_name.c_str());
  }
  if (sessions) sessions->attach(ssl);
  SSL_set_connect_state(ssl);
  std::unique_ptr<TlsStream> stream(new TlsStream(base, fd, ssl, Phase::connecting, handler));
  stream->update_events();  // writable once connected
  return stream;
}

void TlsStream::on_read_event(int, short, void* arg) {
  static_cast<TlsStream*>(static_cast<Stream*>(arg))->handle_readable();
}
void TlsStream::on_write_event(int, short, void* arg) {
  static_cast<TlsStream*>(static_cast<Stream*>(arg))->handle_writable();
}

// Arms the socket events for what each side is blocked on. A read blocked on
// WANT_WRITE waits for writability and a write blocked on WANT_READ for
// readability (TLS 1.3 key updates, post-handshake messages).
void TlsStream::update_events() {
  bool want_read = false;
  bool want_write = false;
  if (!failed_) {
    switch (phase_) {
      case Phase::connecting: want_write = true; break;
      case Phase::handshaking:
        want_read = handshake_wait_ == Wait::readable;
        want_write = handshake_wait_ == Wait::writable;
        break;
      case Phase::open:
        want_read = (reading_ && read_wait_ != Wait::writable) || write_wait_ == Wait::readable;
        want_write = read_wait_ == Wait::writable ||
                     (write_wait_ != Wait::readable && evbuffer_get_length(output_) > 0);
        break;
      case Phase::refused: want_read = reading_; break;
    }
  }
  set_armed(read_event_, read_armed_, want_read);
  set_armed(write_event_, write_armed_, want_write);
}

void TlsStream::fail(const std::string& what) {
  failed_ = true;
  reading_ = false;
  update_events();
  handler_->on_stream_error(*this, what);
}

void TlsStream::set_reading(bool enabled) {
  if (enabled == reading_ || failed_) return;
  if (enabled && peer_closed_) return;
  reading_ = enabled;
  update_events();
  // Records OpenSSL already holds (read-ahead) will not make the socket
  // readable again: go and decrypt them.
  if (enabled && phase_ == Phase::open && SSL_has_pending(ssl_)) event_active(read_event_, EV_READ, 1);
}

void TlsStream::handle_readable() {
  if (failed_) return;
  if (phase_ == Phase::refused) {
    drop_refused_input();
    return;
  }
  if (phase_ == Phase::handshaking) {
    if (screen_first_bytes_ && !first_bytes_are_tls()) return;
    handshake();
    return;
  }
  if (phase_ != Phase::open) return;
  if (write_wait_ == Wait::readable) {
    // The write path waited for this; it retries (and reports) from its own event.
    write_wait_ = Wait::nothing;
    event_active(write_event_, EV_WRITE, 1);
  }
  if (reading_ && read_wait_ != Wait::writable)
    read_records();
  else
    update_events();
}

void TlsStream::handle_writable() {
  if (failed_) return;
  if (phase_ == Phase::connecting) {
    finish_connect();
    return;
  }
  if (phase_ == Phase::handshaking) {
    handshake();
    return;
  }
  if (read_wait_ == Wait::writable) {
    read_wait_ = Wait::nothing;
    if (reading_) event_active(read_event_, EV_READ, 1);
  }
  if (write_wait_ == Wait::readable) {
    update_events();
    return;
  }
  std::size_t before = evbuffer_get_length(output_);
  bool ok = write_output();
  update_events();
  if (!ok) {
    fail(error_);
    return;
  }
  std::size_t after = evbuffer_get_length(output_);
  if (after < before && after <= low_watermark_) handler_->on_stream_drained(*this);
}

void TlsStream::finish_connect() {
  int error = 0;
  socklen_t length = sizeof error;
  if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
  if (error != 0) {
    fail(std::strerror(error));  // not a TLS failure: no handshake was tried
    return;
  }
  phase_ = Phase::handshaking;
  handshake();
}

void TlsStream::handshake() {
  ERR_clear_error();
  errno = 0;
  int rc = SSL_do_handshake(ssl_);
  int saved_errno = errno;
  if (rc == 1) {
    phase_ = Phase::open;
    handshake_done_ = true;
    handshake_wait_ = Wait::nothing;
    update_events();
    // A request that came with the handshake's last flight is already in
    // OpenSSL's buffer; the socket will not signal it.
    if (reading_ && SSL_has_pending(ssl_)) event_active(read_event_, EV_READ, 1);
    handler_->on_stream_connected(*this);
    return;
  }
  std::string reason;
  switch (classify(ssl_, rc, saved_errno, reason)) {
    case Outcome::blocked_read:
      handshake_wait_ = Wait::readable;
      update_events();
      return;
    case Outcome::blocked_write:
      handshake_wait_ = Wait::writable;
      update_events();
      return;
    case Outcome::eof:
      // Gone before finishing the handshake (a port probe, a client giving
      // up): a close, not a TLS failure.
      peer_closed_ = true;
      reading_ = false;
      handshake_wait_ = Wait::nothing;
      update_events();
      handler_->on_stream_readable(*this);
      return;
    case Outcome::error: break;
  }
  if (long verify = SSL_get_verify_result(ssl_); verify != X509_V_OK)
    reason = std::string("certificate verification failed: ") + X509_verify_cert_error_string(verify);
  handshake_failed_ = true;
  fail("TLS handshake: " + reason);
}

// Before the first handshake step on the server side: is the client
// speaking TLS at all? Peeked, so OpenSSL still reads every byte. Plain HTTP
// is refused here (refuse_plain_http); other bytes go to OpenSSL, whose
// handshake fails on them. False: do not go on with the handshake now.
bool TlsStream::first_bytes_are_tls() {
  char first[16];
  ssize_t n = ::recv(fd_, first, sizeof first, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return false;  // not yet
  screen_first_bytes_ = false;
  if (n <= 0) return true;  // EOF or error: the handshake reports it
  std::string_view bytes(first, static_cast<std::size_t>(n));
  if (looks_like_tls_handshake(bytes) || !plausible_request_start(bytes)) return true;
  refuse_plain_http();
  return false;
}

// What Go's net/http answers plain HTTP on a TLS port (clients and people
// recognise the sentence), then the client's close is awaited with input
// dropped: closing on unread bytes would reset the connection and could
// destroy the answer in flight.
void TlsStream::refuse_plain_http() {
  static const std::string kAnswer = [] {
    constexpr std::string_view body = "Client sent an HTTP request to an HTTPS server.\n";
    return fmt::format("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n"
                       "Connection: close\r\n\r\n{}",
                       body.size(), body);
  }();
  phase_ = Phase::refused;
  reading_ = false;  // the handler turns reading on when it is ready to wait (lingering)
  handshake_wait_ = Wait::nothing;
  // A fresh connection's send buffer takes these bytes whole; if it did not,
  // the client would only miss the sentence, never block us.
  [[maybe_unused]] ssize_t sent = ::send(fd_, kAnswer.data(), kAnswer.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  ::shutdown(fd_, SHUT_WR);
  update_events();
  handler_->on_plain_http_refused(*this);
}

void TlsStream::drop_refused_input() {
  char sink[16384];
  // Bounded: a few reads per wakeup, then other connections get a turn.
  for (int round = 0; round < 8; ++round) {
    ssize_t n = ::recv(fd_, sink, sizeof sink, MSG_DONTWAIT);
    if (n > 0) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n < 0) {
      fail(std::strerror(errno));
      return;
    }
    peer_closed_ = true;
    reading_ = false;
    update_events();
    handler_->on_stream_readable(*this);
    return;
  }
}

// Decrypts into input() until OpenSSL needs the socket again or the budget is
// spent, then tells the handler.
void TlsStream::read_records() {
  std::size_t total = 0;
  bool eof = false;
  bool blocked = false;
  std::string error;
  read_wait_ = Wait::nothing;
  while (total < kReadBudget && !blocked && !eof && error.empty()) {
    evbuffer_iovec vec[2];
    int count = evbuffer_reserve_space(input_, SocketStream::kReadSlice, vec, 2);
    if (count <= 0) {
      error = "out of memory";
      break;
    }
    // SSL_read returns at most one record (16 KiB): fill the slice with many.
    for (int i = 0; i < count; ++i) {
      std::size_t used = 0;
      while (used < vec[i].iov_len) {
        std::size_t n = 0;
        ERR_clear_error();
        errno = 0;
        int rc = SSL_read_ex(ssl_, static_cast<char*>(vec[i].iov_base) + used, vec[i].iov_len - used, &n);
        if (rc == 1) {
          used += n;
          continue;
        }
        int saved_errno = errno;
        switch (classify(ssl_, rc, saved_errno, error)) {
          case Outcome::blocked_read: break;  // nothing more for now (a session ticket is not data)
          case Outcome::blocked_write: read_wait_ = Wait::writable; break;
          case Outcome::eof: eof = true; break;
          case Outcome::error: break;
        }
        blocked = true;
        break;
      }
      vec[i].iov_len = used;
      total += used;
      if (blocked) {
        count = i + 1;
        break;
      }
    }
    evbuffer_commit_space(input_, vec, count);
  }
  transferred_ += total;
  if (!error.empty()) {
    fail(error);
    return;
  }
  if (eof) {
    peer_closed_ = true;
    reading_ = false;
  } else if (!blocked && SSL_has_pending(ssl_)) {
    // Stopped by the budget with records left inside OpenSSL: the socket may
    // never become readable for them, so come back on the next loop turn.
    event_active(read_event_, EV_READ, 1);
  }
  update_events();
  if (total > 0 || eof) handler_->on_stream_readable(*this);
}

// Encrypts output() until it is empty, OpenSSL needs the socket or the
// budget is spent. Drains only what SSL_write reports written: after a
// WANT_WRITE the retry must offer the same bytes again, at least as many
// (the front chain only grows, so min(its length, kWriteChunk) never shrinks).
bool TlsStream::write_output() {
  write_wait_ = Wait::nothing;
  std::size_t written = 0;
  while (written < kWriteBudget) {
    evbuffer_iovec vec;
    if (evbuffer_get_length(output_) == 0 || evbuffer_peek(output_, -1, nullptr, &vec, 1) < 1) break;
    std::size_t length = std::min(vec.iov_len, kWriteChunk);
    std::size_t n = 0;
    ERR_clear_error();
    errno = 0;
    int rc = SSL_write_ex(ssl_, vec.iov_base, length, &n);
    if (rc == 1) {
      evbuffer_drain(output_, n);
      transferred_ += n;
      written += n;
      continue;
    }
    int saved_errno = errno;
    switch (classify(ssl_, rc, saved_errno, error_)) {
      case Outcome::blocked_write: write_wait_ = Wait::writable; return true;
      case Outcome::blocked_read:
        if (peer_closed_) {
          error_ = "write needs a read after the peer closed";
          break;
        }
        write_wait_ = Wait::readable;
        return true;
      case Outcome::eof: error_ = "the peer closed the connection"; break;
      case Outcome::error: break;
    }
    failed_ = true;
    return false;
  }
  return true;
}

bool TlsStream::flush() {
  if (failed_) return false;
  // Before the handshake: written once it completes. Blocked: the armed
  // event retries (SSL_write now would only repeat the WANT_*).
  if (phase_ != Phase::open || write_wait_ != Wait::nothing) {
    update_events();
    return true;
  }
  bool ok = write_output();
  update_events();
  return ok;
}

bool TlsStream::idle_and_alive() {
  if (failed_ || peer_closed_ || !handshake_done_) return false;
  if (evbuffer_get_length(input_) > 0) return false;
  // SSL_peek takes in what the socket holds without consuming data: session
  // tickets and other post-handshake messages are processed and are fine;
  // application data (bytes out of step) or a close are not.
  char byte;
  std::size_t n = 0;
  ERR_clear_error();
  errno = 0;
  int rc = SSL_peek_ex(ssl_, &byte, 1, &n);
  int saved_errno = errno;
  if (rc == 1) return false;
  std::string ignored;
  Outcome outcome = classify(ssl_, rc, saved_errno, ignored);
  ERR_clear_error();
  return outcome == Outcome::blocked_read;
}

// Nothing is sent (no close_notify), as before: lingering only needs us to
// stop writing, and a close_notify stuck behind a full socket would need a
// write path of its own.
void TlsStream::shutdown_write() {}

}  // namespace regmeter
