// The upstream's addresses, kept current. A registry behind a DNS name (a
// compose service, a Kubernetes headless service, a failover record) moves
// when it restarts; resolving once at start would send every request to the
// old address until regmeter restarts. A background thread resolves the name
// again every --upstream-resolve-interval seconds, and soon after a connect
// fails; workers read the latest list when they dial a new connection.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/config.h"
#include "net/upstream.h"

namespace prometheus {
class Counter;
class Gauge;
}  // namespace prometheus

namespace regmeter {

struct ResolverMetrics {
  prometheus::Counter* changes = nullptr;  // the address set changed
  prometheus::Counter* errors = nullptr;   // a resolution failed (old addresses kept)
  prometheus::Gauge* addresses = nullptr;  // addresses currently dialled
  prometheus::Counter* connect_failures = nullptr;  // refused/unreachable connects, retried or not
};

class UpstreamResolver {
 public:
  // `initial`: the start-up resolution (non-empty). `interval` zero: never
  // again. IP literals are never re-resolved either.
  UpstreamResolver(HostPort where, std::chrono::milliseconds interval, AddressList initial, ResolverMetrics metrics = {});
  ~UpstreamResolver();
  UpstreamResolver(const UpstreamResolver&) = delete;
  UpstreamResolver& operator=(const UpstreamResolver&) = delete;

  // The current addresses (never empty). Thread-safe; one lock per new
  // upstream connection, none per request on a pooled connection.
  std::shared_ptr<const AddressList> addresses() const;
  // "registry:5000": the name as configured, for logs and error bodies.
  const std::string& description() const { return description_; }
  // A connect to one of the addresses failed: resolve again soon (at most
  // once per second), in case the registry moved.
  void connect_failed();

 private:
  void run();
  bool refresh();  // one resolution; true when the address set changed

  HostPort where_;
  std::string description_;
  std::chrono::milliseconds interval_;
  ResolverMetrics metrics_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::shared_ptr<const AddressList> current_;
  bool stopping_ = false;
  bool early_ = false;  // connect_failed() asked for a resolution now
  bool last_failed_ = false;
  std::thread thread_;
};

}  // namespace regmeter
