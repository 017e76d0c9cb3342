// What every thread's upstream pool shares: the optional cap on open
// upstream connections (core/upstream_budget.h), how to wake each pool
// when a slot is granted to one of its waiting requests or idle
// connections should make room, and the process-wide gauges. Without a cap
// no thread touches anything shared on the request path: each pool
// publishes its counts to the gauges once a second.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <vector>

#include "core/upstream_budget.h"

namespace prometheus {
class Gauge;
}

namespace regmeter {

struct UpstreamGauges {
  prometheus::Gauge* active = nullptr;  // regmeter_upstream_connections{state="active"}
  prometheus::Gauge* idle = nullptr;    // ... {state="idle"}
  prometheus::Gauge* queue_depth = nullptr;  // regmeter_upstream_queue_depth
};

class UpstreamLimiter {
 public:
  // `limit` 0: no cap (budget() is null).
  UpstreamLimiter(std::size_t limit, std::size_t threads, UpstreamGauges gauges = {});
  ~UpstreamLimiter();
  UpstreamLimiter(const UpstreamLimiter&) = delete;
  UpstreamLimiter& operator=(const UpstreamLimiter&) = delete;

  UpstreamBudget* budget() { return budget_.get(); }
  // The eventfd `thread`'s pool watches (grants, make-room requests).
  int wake_fd(std::size_t thread) const { return wake_fds_.at(thread); }
  void wake(std::size_t thread);
  // A request on `thread` had to queue: pools elsewhere that hold idle
  // connections (each holding a slot) close some so the queue moves.
  void ask_for_room(std::size_t thread);
  // Each pool keeps its idle count here (its own cache line) so that
  // ask_for_room wakes only pools that have something to give.
  void set_idle(std::size_t thread, std::size_t idle) {
    idle_[thread].value.store(idle, std::memory_order_relaxed);
  }
  const UpstreamGauges& gauges() const { return gauges_; }

 private:
  struct alignas(64) PaddedCount {
    std::atomic<std::size_t> value{0};
  };
  std::vector<int> wake_fds_;
  std::unique_ptr<PaddedCount[]> idle_;
  std::size_t threads_;
  UpstreamGauges gauges_;
  std::unique_ptr<UpstreamBudget> budget_;  // last: its callback uses wake_fds_
};

}  // namespace regmeter
