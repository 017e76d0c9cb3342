// Where bytes enter and leave the process: a connection and its two byte
// queues. In SocketStream (plain TCP) reads land in input() in large slices
// (libevent 2.1's own socket reads stop at 4 KiB, which makes a relay 3x
// slower than nginx) and writes drain output() with writev. Everything above it moves evbuffer
// chains between streams and never copies body bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

struct event;
struct event_base;
struct evbuffer;
struct sockaddr;

namespace regmeter {

class Stream;

// Socket helpers both kinds of stream use.
// TCP_NODELAY: heads and small answers must not wait for Nagle.
void set_tcp_nodelay(int fd);
// A non-blocking socket with its connect() started; -1 and `error` set when
// it failed at once.
int start_connect(const sockaddr* address, int address_length, std::string& error);
// Whether HOST is an IPv4 or IPv6 literal (no name to resolve or verify).
bool is_ip_literal(const std::string& host);
// Adds or deletes a persistent event when `want` differs from `armed`, and
// records it there (each stream keeps one flag per event).
void set_armed(event* ev, bool& armed, bool want);

class StreamHandler {
 public:
  virtual ~StreamHandler() = default;
  // New bytes are in input(), or the peer closed (stream.peer_closed()).
  virtual void on_stream_readable(Stream& stream) = 0;
  // A write made progress and output() is now at or below the low-water mark.
  virtual void on_stream_drained(Stream& stream) = 0;
  // The socket failed (reset, write error, failed connect). `what` says how.
  virtual void on_stream_error(Stream& stream, const std::string& what) = 0;
  // A connect() started by connect_to() finished successfully.
  virtual void on_stream_connected(Stream& stream) { (void)stream; }
  // The TLS port received plain HTTP instead of a ClientHello: the stream has
  // answered 400 in plain text itself and, once reading is on, only drops
  // what the client still sends until it closes (see TlsStream).
  virtual void on_plain_http_refused(Stream& stream) { (void)stream; }
};

// A connection's byte queues and its flow switches. Two kinds: plain
// sockets (SocketStream, below) and TLS (TlsStream in tls_stream.h). Callers move bytes
// in and out of input()/output() and never touch the socket.
class Stream {
 public:
  virtual ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  evbuffer* input() const { return input_; }
  evbuffer* output() const { return output_; }
  bool peer_closed() const { return peer_closed_; }
  bool failed() const { return failed_; }
  bool reading() const { return reading_; }
  // Bytes read plus bytes written so far: progress, for the body timeout.
  std::uint64_t transferred() const { return transferred_; }

  void set_handler(StreamHandler* handler) { handler_ = handler; }
  virtual void set_reading(bool enabled) = 0;
  // on_stream_drained fires when a write leaves output() at or below this.
  void set_low_watermark(std::size_t bytes) { low_watermark_ = bytes; }

  // Starts writing output(). Never calls the handler (callers may be inside
  // a handler); returns false when the connection failed.
  virtual bool flush() = 0;
  // Whether the connection looks usable for another request: no EOF, no
  // error, no stray bytes waiting.
  virtual bool idle_and_alive() = 0;
  // Half-close: we will send nothing more (used while lingering).
  virtual void shutdown_write() = 0;
  // Frees buffer space input() holds while empty: a keep-alive connection
  // between requests must not keep a read chain (up to 512 KiB, its pages
  // touched by earlier reads) resident.
  void release_idle_buffers();
  // The connection failed before its TLS handshake completed.
  virtual bool handshake_failed() const { return false; }

 protected:
  using EventCallback = void (*)(int fd, short what, void* stream);
  // Takes ownership of the non-blocking socket `fd`: sets TCP_NODELAY and
  // makes both byte queues and the two persistent socket events (not armed
  // yet), whose callbacks get this Stream* as their argument. The
  // destructor frees them and closes the socket, after the derived one.
  Stream(event_base* base, int fd, StreamHandler* handler, EventCallback on_readable, EventCallback on_writable);
  // Byte queues only, no socket or events: a stream whose bytes come from
  // elsewhere (the engine tests' FakeStream).
  explicit Stream(StreamHandler* handler);

  int fd_;
  evbuffer* input_;
  evbuffer* output_;
  event* read_event_ = nullptr;
  event* write_event_ = nullptr;
  std::size_t low_watermark_ = 0;
  StreamHandler* handler_ = nullptr;
  bool peer_closed_ = false;
  bool failed_ = false;
  bool reading_ = false;
  std::uint64_t transferred_ = 0;
};

class SocketStream final : public Stream {
 public:
  // Takes ownership of a non-blocking socket.
  SocketStream(event_base* base, int fd, StreamHandler* handler);

  // Creates a non-blocking socket and starts connecting; the outcome arrives
  // as on_stream_connected or on_stream_error. Returns nullptr (and fills
  // `error`) when the connect fails at once.
  static std::unique_ptr<Stream> connect_to(event_base* base, const sockaddr* address, int address_length,
                                            StreamHandler* handler, std::string& error);

  void set_reading(bool enabled) override;
  bool flush() override;
  bool idle_and_alive() override;
  void shutdown_write() override;

  static constexpr std::size_t kReadSlice = 256 * 1024;

 private:
  static void on_read_event(int fd, short what, void* arg);
  static void on_write_event(int fd, short what, void* arg);
  void handle_read();
  void handle_write();
  void update_write_interest();

  bool writing_ = false;
  bool connecting_ = false;
};

}  // namespace regmeter
