#include "app/dashboard_history.h"

#include <event2/event.h>
#include <prometheus/metric_family.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "core/dashboard_readings.h"
#include "core/metrics.h"
#include "net/timeval.h"

namespace regmeter {

namespace {

// Unix milliseconds: the page draws its time axis with Date.now().
std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::size_t capacity_for(double interval_s, double window_s) {
  if (!(interval_s > 0) || !(window_s >= interval_s))
    throw std::invalid_argument("dashboard history: the window must be at least one interval");
  return static_cast<std::size_t>(std::ceil(window_s / interval_s - 1e-9));
}

}  // namespace

DashboardHistory::DashboardHistory(event_base* base, const Metrics& metrics, double interval_s, double window_s)
    : metrics_(metrics), interval_s_(interval_s), history_(capacity_for(interval_s, window_s), kMaxColumns) {
  timer_ = event_new(base, -1, EV_PERSIST, &DashboardHistory::on_tick, this);
  if (timer_ == nullptr) throw std::runtime_error("dashboard history: event_new failed");
  timeval tick = seconds_to_timeval(interval_s);
  event_add(timer_, &tick);
  sample();
}

DashboardHistory::~DashboardHistory() {
  if (timer_ != nullptr) event_free(timer_);
}

void DashboardHistory::on_tick(int, short, void* arg) { static_cast<DashboardHistory*>(arg)->sample(); }

// The wall clock may step back (NTP); intervals must not end before they start.
std::int64_t DashboardHistory::stamp() {
  last_stamp_ms_ = std::max(last_stamp_ms_, wall_ms());
  return last_stamp_ms_;
}

void DashboardHistory::sample() { history_.record(stamp(), dashboard_readings(metrics_.collect_http_families())); }

std::string DashboardHistory::json() {
  auto partial = history_.peek(stamp(), dashboard_readings(metrics_.collect_http_families()));
  return history_.to_json(interval_s_, partial);
}

std::string DashboardHistory::off_json(double interval_s) {
  return fmt::format("{{\"interval_seconds\":{},\"capacity\":0,\"off\":true,\"columns\":[],\"intervals\":[],\"partial\":null}}",
                     interval_s);
}

}  // namespace regmeter
