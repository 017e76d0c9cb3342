// Metering state shared by every event-loop thread (issue 16), and the glue
// that hands a finished exchange to it.
//
// Image pulls: one pull's requests arrive on several connections (dockerd
// opens one per request) and SO_REUSEPORT spreads connections over the
// threads, so there is one PullSessions table per process behind a mutex. It
// is touched once per manifest GET and blob GET/HEAD (never per byte), and
// ended pulls are recorded into the calling thread's metrics shard after the
// table's lock is released.
//
// The upstream's rate budget: the last values any response carried, as
// prometheus-cpp gauges (atomic), each created when its first value is seen
// so that an upstream that sends no such headers exports no such series.
#pragma once

#include <mutex>
#include <string_view>

#include "core/config.h"
#include "core/metrics.h"
#include "core/pull_sessions.h"
#include "core/rate_limit.h"
#include "core/response_meter.h"

namespace prometheus {
class Gauge;
template <typename T>
class Family;
class Registry;
}  // namespace prometheus

namespace regmeter {

class SharedMetering {
 public:
  SharedMetering(const Config& config, prometheus::Registry& registry);
  SharedMetering(const SharedMetering&) = delete;
  SharedMetering& operator=(const SharedMetering&) = delete;

  bool tracks_pulls() const { return tracks_pulls_; }

  // From any thread: a response head announced this budget.
  void rate_limit_seen(const RateLimit& budget);

  // A finished exchange of a manifest or blob route, for the pull table.
  struct PullRequest {
    PullKey key;
    Handler handler = Handler::other;
    Method method = Method::other;
    int status = 0;
    std::string_view reference;  // tag or digest of the URL
    std::uint64_t response_body_bytes = 0;
    Clock::time_point started, finished;
    const ResponseMeter* meter = nullptr;  // the manifest, when one parsed
    bool response_complete = false;
  };
  void pull_request_finished(const PullRequest& request, MetricsShard& shard);

  // Ends the pulls idle for --pull-session-idle (call every second or so).
  void expire_pulls(Clock::time_point now, MetricsShard& shard);
  std::size_t pulls_tracked();

 private:
  const bool tracks_pulls_;
  std::mutex pulls_mutex_;
  PullSessions pulls_;

  std::mutex gauges_mutex_;
  prometheus::Family<prometheus::Gauge>& limit_family_;
  prometheus::Family<prometheus::Gauge>& remaining_family_;
  prometheus::Family<prometheus::Gauge>& window_family_;
  prometheus::Gauge* limit_ = nullptr;
  prometheus::Gauge* remaining_ = nullptr;
  prometheus::Gauge* window_ = nullptr;
};

}  // namespace regmeter
