// What a ClientConnection needs from the rest of the process, and nothing
// more: settings, where numbers and log lines go, request ids, upstream
// connections, timers, and being let go. Worker implements it for a real
// event-loop thread; the engine's unit tests implement it with fakes (a
// manual clock, scripted upstream streams). Every call is per request or
// per event, never per body byte.
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>

namespace regmeter {

class AccessLogBuffer;
class ClientConnection;
class MetricsShard;
class OpenSessionTable;
class RequestIdGenerator;
class SharedMetering;
class UpstreamSource;
struct Config;
struct Exchange;

// Buffering limits of the data path. Memory per connection is bounded by
// these, never by body sizes.
struct FlowLimits {
  std::size_t high_watermark = 1024 * 1024;  // stop reading the source here
  std::size_t low_watermark = 256 * 1024;    // resume when the destination drains to this
};

// One-shot timer owned by a connection, re-armed for each purpose.
class ConnectionTimer {
 public:
  virtual ~ConnectionTimer() = default;
  // Fires once, `seconds` from now (replacing any earlier arming).
  virtual void arm(double seconds) = 0;
  virtual void cancel() = 0;
};

class ConnectionHost {
 public:
  virtual const Config& config() const = 0;
  virtual const FlowLimits& limits() const = 0;
  // "https" when clients reach us over TLS, else "http" (X-Forwarded-Proto, Location).
  virtual std::string_view client_scheme() const = 0;
  // The server is stopping: no keep-alive after the current request.
  virtual bool draining() const = 0;

  // This thread's metrics shard (requests started, connects, rejections,
  // upload sessions) ...
  virtual MetricsShard& metrics() = 0;
  // ... and where each finished exchange is recorded (the shard too).
  virtual void request_finished(const Exchange& record) = 0;
  // A TLS handshake with the client (or with the upstream) failed.
  virtual void handshake_failed(bool client_side) = 0;
  virtual OpenSessionTable& sessions() = 0;
  virtual SharedMetering& metering() = 0;
  virtual AccessLogBuffer& access_log() = 0;
  virtual RequestIdGenerator& request_ids() = 0;
  virtual UpstreamSource& upstream() = 0;

  // A timer calling fire(arg) on this connection's loop.
  virtual std::unique_ptr<ConnectionTimer> make_timer(void (*fire)(void* arg), void* arg) = 0;
  // The connection is dead (destroy() ran): the host drops it and deletes it
  // later, from its loop; callers up the stack still hold it.
  virtual void forget(ClientConnection* connection) = 0;

 protected:
  ~ConnectionHost() = default;
};

}  // namespace regmeter
