// One socket and its two byte queues. This is where bytes enter and leave
// the process: reads land in input() in large slices (libevent 2.1's own
// socket reads stop at 4 KiB, which makes a relay 3x slower than nginx),
// writes drain output() with writev. Everything above it moves evbuffer
// chains between streams and never copies body bytes.
#pragma once

#include <cstddef>
#include <string>

struct event;
struct event_base;
struct evbuffer;
struct sockaddr;

namespace regmeter {

class Stream;

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
};

class Stream {
 public:
  // Takes ownership of a non-blocking socket.
  Stream(event_base* base, int fd, StreamHandler* handler);
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // Creates a non-blocking socket and starts connecting; the outcome arrives
  // as on_stream_connected or on_stream_error. Returns nullptr (and fills
  // `error`) when the connect fails at once.
  static Stream* connect_to(event_base* base, const sockaddr* address, int address_length,
                            StreamHandler* handler, std::string& error);

  evbuffer* input() const { return input_; }
  evbuffer* output() const { return output_; }
  int fd() const { return fd_; }
  bool peer_closed() const { return peer_closed_; }
  bool failed() const { return failed_; }

  void set_handler(StreamHandler* handler) { handler_ = handler; }
  void set_reading(bool enabled);
  bool reading() const { return reading_; }
  void set_low_watermark(std::size_t bytes) { low_watermark_ = bytes; }

  // Writes as much of output() as the socket takes now and waits for the
  // rest. Never calls the handler (callers may be inside a handler); returns
  // false when the socket failed.
  bool flush();

  // Whether the connection looks usable for another request: no EOF, no
  // error, and no stray bytes waiting (checked with a non-blocking peek).
  bool idle_and_alive();

  static constexpr std::size_t kReadSlice = 256 * 1024;

 private:
  static void on_read_event(int fd, short what, void* arg);
  static void on_write_event(int fd, short what, void* arg);
  void handle_read();
  void handle_write();
  void update_write_interest();

  event_base* base_;
  int fd_;
  StreamHandler* handler_;
  evbuffer* input_;
  evbuffer* output_;
  event* read_event_ = nullptr;
  event* write_event_ = nullptr;
  bool reading_ = false;
  bool writing_ = false;
  bool connecting_ = false;
  bool peer_closed_ = false;
  bool failed_ = false;
  std::size_t low_watermark_ = 0;
};

}  // namespace regmeter
