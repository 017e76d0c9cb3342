#include "app/memory_trim.h"

#include <malloc.h>

#include <event2/event.h>

#include "core/metrics.h"

namespace regmeter {

IdleMemoryTrimmer::IdleMemoryTrimmer(event_base* base, const Metrics& metrics, std::chrono::milliseconds tick)
    : metrics_(metrics) {
  timer_ = event_new(base, -1, EV_PERSIST, &IdleMemoryTrimmer::on_tick, this);
  auto ms = tick.count();
  timeval every{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
  event_add(timer_, &every);
  started_at_last_trim_ = started_at_last_tick_ = metrics_.activity().started;
}

IdleMemoryTrimmer::~IdleMemoryTrimmer() { event_free(timer_); }

void IdleMemoryTrimmer::on_tick(int, short, void* arg) { static_cast<IdleMemoryTrimmer*>(arg)->tick(); }

void IdleMemoryTrimmer::tick() {
  Metrics::Activity now = metrics_.activity();
  // Quiet: nothing in flight now, and nothing started since the last tick
  // (so not just a gap between two requests of a busy client).
  bool quiet = now.in_flight == 0 && now.started == started_at_last_tick_;
  started_at_last_tick_ = now.started;
  // Trim once per quiet period, and only if there was traffic since the
  // last trim: malloc_trim walks every arena, not worth doing for nothing.
  if (quiet && quiet_last_tick_ && now.started != started_at_last_trim_) {
    malloc_trim(0);
    started_at_last_trim_ = now.started;
    ++trims_;
  }
  quiet_last_tick_ = quiet;
}

}  // namespace regmeter
