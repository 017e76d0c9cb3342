// IdleMemoryTrimmer trims once per quiet period after traffic, never while
// a request is in flight, and not again without new traffic.
#include <gtest/gtest.h>

#include <event2/event.h>

#include "app/memory_trim.h"
#include "core/metrics.h"

namespace regmeter {
namespace {

struct Loop {
  event_base* base = event_base_new();
  ~Loop() { event_base_free(base); }
  // Runs the loop for `ms` milliseconds of timer ticks.
  void run_for(int ms) {
    timeval until{0, ms * 1000};
    event_base_loopexit(base, &until);
    event_base_dispatch(base);
  }
};

Exchange finished_exchange() {
  Exchange exchange;
  exchange.handler = Handler::base;
  exchange.method = Method::get;
  exchange.status = 200;
  return exchange;
}

TEST(IdleMemoryTrimmer, NoTrafficNoTrim) {
  Loop loop;
  Metrics metrics(2);
  IdleMemoryTrimmer trimmer(loop.base, metrics, std::chrono::milliseconds(10));
  loop.run_for(100);
  EXPECT_EQ(0u, trimmer.trims());
}

TEST(IdleMemoryTrimmer, TrimsOnceAfterTrafficWhenQuiet) {
  Loop loop;
  Metrics metrics(2);
  IdleMemoryTrimmer trimmer(loop.base, metrics, std::chrono::milliseconds(10));
  metrics.shard(1).request_started(Handler::base);
  metrics.shard(1).request_finished(finished_exchange());
  loop.run_for(100);
  EXPECT_EQ(1u, trimmer.trims());
  loop.run_for(100);
  EXPECT_EQ(1u, trimmer.trims()) << "no new traffic, no second trim";
}

TEST(IdleMemoryTrimmer, NeverWhileARequestIsInFlight) {
  Loop loop;
  Metrics metrics(2);
  IdleMemoryTrimmer trimmer(loop.base, metrics, std::chrono::milliseconds(10));
  metrics.shard(0).request_started(Handler::base);  // a long upload, say
  loop.run_for(100);
  EXPECT_EQ(0u, trimmer.trims());
  metrics.shard(0).request_finished(finished_exchange());
  loop.run_for(100);
  EXPECT_EQ(1u, trimmer.trims());
}

}  // namespace
}  // namespace regmeter
