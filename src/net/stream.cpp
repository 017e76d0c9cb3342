#include "net/stream.h"

#include <cerrno>
#include <cstring>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

namespace regmeter {

void set_tcp_nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int start_connect(const sockaddr* address, int address_length, std::string& error) {
  int fd = ::socket(address->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = std::strerror(errno);
    return -1;
  }
  if (::connect(fd, address, static_cast<socklen_t>(address_length)) != 0 && errno != EINPROGRESS) {
    error = std::strerror(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}

bool is_ip_literal(const std::string& host) {
  unsigned char buffer[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buffer) == 1 || inet_pton(AF_INET6, host.c_str(), buffer) == 1;
}

void set_armed(event* ev, bool& armed, bool want) {
  if (want == armed) return;
  armed = want;
  if (want)
    event_add(ev, nullptr);
  else
    event_del(ev);
}

Stream::Stream(event_base* base, int fd, StreamHandler* handler, EventCallback on_readable,
               EventCallback on_writable)
    : fd_(fd), input_(evbuffer_new()), output_(evbuffer_new()), handler_(handler) {
  set_tcp_nodelay(fd_);
  read_event_ = event_new(base, fd_, EV_READ | EV_PERSIST, on_readable, this);
  write_event_ = event_new(base, fd_, EV_WRITE | EV_PERSIST, on_writable, this);
}

Stream::Stream(StreamHandler* handler)
    : fd_(-1), input_(evbuffer_new()), output_(evbuffer_new()), handler_(handler) {}

Stream::~Stream() {
  // event_free also drops an activation still queued for this stream.
  if (read_event_) event_free(read_event_);
  if (write_event_) event_free(write_event_);
  evbuffer_free(input_);
  evbuffer_free(output_);
  if (fd_ >= 0) ::close(fd_);
}

SocketStream::SocketStream(event_base* base, int fd, StreamHandler* handler)
    : Stream(base, fd, handler, &SocketStream::on_read_event, &SocketStream::on_write_event) {}

std::unique_ptr<Stream> SocketStream::connect_to(event_base* base, const sockaddr* address, int address_length,
                           StreamHandler* handler, std::string& error) {
  int fd = start_connect(address, address_length, error);
  if (fd < 0) return nullptr;
  auto stream = std::make_unique<SocketStream>(base, fd, handler);
  stream->connecting_ = true;
  set_armed(stream->write_event_, stream->writing_, true);
  return stream;
}

void SocketStream::set_reading(bool enabled) {
  if (enabled == reading_ || failed_) return;
  if (enabled && peer_closed_) return;
  set_armed(read_event_, reading_, enabled);
}

void SocketStream::on_read_event(int, short, void* arg) {
  static_cast<SocketStream*>(static_cast<Stream*>(arg))->handle_read();
}
void SocketStream::on_write_event(int, short, void* arg) {
  static_cast<SocketStream*>(static_cast<Stream*>(arg))->handle_write();
}

void Stream::release_idle_buffers() {
  // A read that found nothing leaves its reserved chain in input(), empty.
  // evbuffer_drain frees chains only when there are bytes to drain (it
  // returns early on an empty buffer), so give it one. output() needs
  // nothing: draining it to empty (every write does) frees its chains.
  evbuffer* buffer = input();
  if (evbuffer_get_length(buffer) == 0 && evbuffer_add(buffer, "", 1) == 0) evbuffer_drain(buffer, 1);
}

void SocketStream::handle_read() {
  // Read straight into evbuffer chain space in large slices. A slice that
  // came back full means the socket has more: take one more before handing
  // over, which halves the wakeups (and writes) of a fast stream while
  // keeping what one wakeup can add to memory small.
  constexpr int kSlicesPerWakeup = 2;
  std::size_t total = 0;
  bool eof = false;
  int error = 0;
  for (int slice = 0; slice < kSlicesPerWakeup; ++slice) {
    evbuffer_iovec vec[2];
    int count = evbuffer_reserve_space(input_, kReadSlice, vec, 2);
    if (count <= 0) {
      error = ENOMEM;
      break;
    }
    iovec io[2];
    std::size_t reserved = 0;
    for (int i = 0; i < count; ++i) {
      io[i].iov_base = vec[i].iov_base;
      io[i].iov_len = vec[i].iov_len;
      reserved += vec[i].iov_len;
    }
    ssize_t n = ::readv(fd_, io, count);
    if (n > 0) {
      std::size_t left = static_cast<std::size_t>(n);
      for (int i = 0; i < count; ++i) {
        std::size_t used = left < vec[i].iov_len ? left : vec[i].iov_len;
        vec[i].iov_len = used;
        left -= used;
      }
      evbuffer_commit_space(input_, vec, count);
      total += static_cast<std::size_t>(n);
      if (static_cast<std::size_t>(n) < reserved) break;  // drained for now
      continue;
    }
    evbuffer_commit_space(input_, vec, 0);
    if (n == 0) {
      eof = true;
    } else if (errno == EINTR) {
      continue;
    } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
      error = errno;
    }
    break;
  }
  transferred_ += total;
  if (error != 0) {
    failed_ = true;
    set_reading(false);
    handler_->on_stream_error(*this, std::strerror(error));
    return;
  }
  if (eof) {
    peer_closed_ = true;
    set_reading(false);
  }
  if (total > 0 || eof) handler_->on_stream_readable(*this);
}

void SocketStream::handle_write() {
  if (connecting_) {
    connecting_ = false;
    int error = 0;
    socklen_t length = sizeof error;
    if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
    if (error != 0) {
      failed_ = true;
      set_armed(write_event_, writing_, false);
      handler_->on_stream_error(*this, std::strerror(error));
      return;
    }
    update_write_interest();
    handler_->on_stream_connected(*this);
    return;
  }
  std::size_t before = evbuffer_get_length(output_);
  if (!flush()) {
    handler_->on_stream_error(*this, "write failed");
    return;
  }
  std::size_t after = evbuffer_get_length(output_);
  if (after < before && after <= low_watermark_) handler_->on_stream_drained(*this);
}

bool SocketStream::flush() {
  if (failed_) return false;
  if (connecting_) return true;  // written once connected
  // Bounded: each round either writes something or stops on EAGAIN.
  while (evbuffer_get_length(output_) > 0) {
    int n = evbuffer_write(output_, fd_);
    if (n > 0) {
      transferred_ += static_cast<std::uint64_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) break;
    failed_ = true;
    update_write_interest();
    return false;
  }
  update_write_interest();
  return true;
}

void SocketStream::update_write_interest() {
  set_armed(write_event_, writing_, !failed_ && (connecting_ || evbuffer_get_length(output_) > 0));
}

void SocketStream::shutdown_write() { ::shutdown(fd_, SHUT_WR); }

bool SocketStream::idle_and_alive() {
  if (failed_ || peer_closed_ || connecting_) return false;
  if (evbuffer_get_length(input_) > 0) return false;
  char byte;
  ssize_t n = ::recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0) return false;  // closed by the peer
  if (n > 0) return false;   // unexpected bytes: the connection is out of step
  return errno == EAGAIN || errno == EWOULDBLOCK;
}

}  // namespace regmeter
