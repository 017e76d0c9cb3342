// Samples the dashboard's counters into a MetricHistory on a timer on one
// event loop (worker 0's, the admin server's), and renders the history as
// JSON for GET /dashboard/history. One sample merges the shards as a scrape
// does, without serializing text: a short pause on that loop every
// interval, nothing on the byte path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/metric_history.h"

struct event;
struct event_base;

namespace regmeter {

class Metrics;

class DashboardHistory {
 public:
  // Series the history tracks at most: the dashboard reads about 60.
  static constexpr std::size_t kMaxColumns = 128;

  // Keeps window_s / interval_s intervals (rounded up), sampling every
  // interval_s seconds; the first sample (the baseline) is taken now.
  DashboardHistory(event_base* base, const Metrics& metrics, double interval_s, double window_s);
  ~DashboardHistory();
  DashboardHistory(const DashboardHistory&) = delete;
  DashboardHistory& operator=(const DashboardHistory&) = delete;

  // The stored intervals plus the one in progress; call on the loop's thread.
  std::string json();
  // GET /dashboard/history when --dashboard-history-window is 0: the same
  // shape with nothing in it and "off":true, so the page says the history is
  // off instead of meeting a 404.
  static std::string off_json(double interval_s);
  // Takes a sample now (the timer does this every interval).
  void sample();

  const MetricHistory& history() const { return history_; }

 private:
  static void on_tick(int, short, void* arg);
  std::int64_t stamp();  // Unix ms, never earlier than the previous stamp

  const Metrics& metrics_;
  double interval_s_;
  MetricHistory history_;
  event* timer_ = nullptr;
  std::int64_t last_stamp_ms_ = 0;
};

}  // namespace regmeter
