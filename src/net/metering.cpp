#include "net/metering.h"

#include <chrono>
#include <vector>

#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "core/metric_process_counters.h"

namespace regmeter {

namespace {

PullSessionOptions pull_options(const Config& config) {
  PullSessionOptions options;
  options.max_sessions = config.max_pull_sessions;
  options.idle = std::chrono::duration_cast<PullClock::duration>(std::chrono::duration<double>(config.pull_session_idle_s));
  return options;
}

}  // namespace

SharedMetering::SharedMetering(const Config& config, prometheus::Registry& registry)
    : tracks_pulls_(config.max_pull_sessions > 0),
      pulls_(pull_options(config)),
      limit_family_(build_gauge_family(families::kRateLimitLimit, registry)),
      remaining_family_(build_gauge_family(families::kRateLimitRemaining, registry)),
      window_family_(build_gauge_family(families::kRateLimitWindow, registry)) {}

void SharedMetering::rate_limit_seen(const RateLimit& budget) {
  std::lock_guard lock(gauges_mutex_);
  auto set = [](prometheus::Family<prometheus::Gauge>& family, prometheus::Gauge*& gauge,
                const std::optional<std::uint64_t>& value) {
    if (!value) return;
    if (!gauge) gauge = &family.Add({});
    gauge->Set(static_cast<double>(*value));
  };
  set(limit_family_, limit_, budget.limit);
  set(remaining_family_, remaining_, budget.remaining);
  set(window_family_, window_, budget.window_seconds);
}

void SharedMetering::pull_request_finished(const PullRequest& r, MetricsShard& shard) {
  if (!tracks_pulls_) return;
  std::vector<EndedPull> ended;
  if (r.handler == Handler::manifest && r.method == Method::get && r.status == 200) {
    if (!r.response_complete || !r.meter || !r.meter->manifest()) return;
    std::lock_guard lock(pulls_mutex_);
    ended = pulls_.on_manifest(r.key, r.reference, r.meter->content_digest(), *r.meter->manifest(), r.started,
                               r.finished);
  } else if (r.handler == Handler::blob && (r.method == Method::get || r.method == Method::head)) {
    std::lock_guard lock(pulls_mutex_);
    if (auto done = pulls_.on_blob(r.key, r.reference, r.method == Method::get ? BlobRequest::get : BlobRequest::head,
                                   r.status, r.response_body_bytes, r.started, r.finished))
      ended.push_back(*done);
  } else {
    return;
  }
  for (const auto& pull : ended) shard.image_pull_ended(pull);
}

void SharedMetering::expire_pulls(Clock::time_point now, MetricsShard& shard) {
  if (!tracks_pulls_) return;
  std::vector<EndedPull> ended;
  {
    std::lock_guard lock(pulls_mutex_);
    ended = pulls_.expire(now);
  }
  for (const auto& pull : ended) shard.image_pull_ended(pull);
}

std::size_t SharedMetering::pulls_tracked() {
  std::lock_guard lock(pulls_mutex_);
  return pulls_.size();
}

}  // namespace regmeter
