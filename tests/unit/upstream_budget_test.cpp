// The process-wide upstream connection cap and its FIFO queue.
#include "core/upstream_budget.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace regmeter {
namespace {

struct Woken {
  std::vector<std::size_t> threads;
  std::function<void(std::size_t)> callback() {
    return [this](std::size_t thread) { threads.push_back(thread); };
  }
};

TEST(UpstreamBudget, GivesSlotsUpToTheLimit) {
  Woken woken;
  UpstreamBudget budget(2, 1, woken.callback());
  EXPECT_TRUE(budget.try_acquire());
  EXPECT_TRUE(budget.try_acquire());
  EXPECT_FALSE(budget.try_acquire());
  EXPECT_EQ(budget.in_use(), 2u);
  budget.release();
  EXPECT_EQ(budget.in_use(), 1u);
  EXPECT_TRUE(budget.try_acquire());
  EXPECT_TRUE(woken.threads.empty());
}

TEST(UpstreamBudget, FreedSlotGoesToTheOldestWaiterAcrossThreads) {
  Woken woken;
  UpstreamBudget budget(1, 3, woken.callback());
  ASSERT_TRUE(budget.try_acquire());
  auto first = budget.enqueue(2);
  auto second = budget.enqueue(0);
  auto third = budget.enqueue(2);
  EXPECT_EQ(budget.waiting(), 3u);
  budget.release();
  EXPECT_EQ(woken.threads, std::vector<std::size_t>{2});
  EXPECT_EQ(budget.take_grants(2), std::vector<UpstreamBudget::Ticket>{first});
  EXPECT_EQ(budget.in_use(), 1u) << "the slot moved, it was never free";
  budget.release();
  EXPECT_EQ(budget.take_grants(0), std::vector<UpstreamBudget::Ticket>{second});
  budget.release();
  EXPECT_EQ(budget.take_grants(2), std::vector<UpstreamBudget::Ticket>{third});
  EXPECT_EQ(budget.waiting(), 0u);
  budget.release();
  EXPECT_EQ(budget.in_use(), 0u);
  EXPECT_EQ(woken.threads, (std::vector<std::size_t>{2, 0, 2}));
}

TEST(UpstreamBudget, NewArrivalsDoNotJumpTheQueue) {
  Woken woken;
  UpstreamBudget budget(1, 2, woken.callback());
  ASSERT_TRUE(budget.try_acquire());
  budget.enqueue(1);
  // Even right after a release, a slot with someone waiting is theirs.
  budget.release();
  EXPECT_FALSE(budget.try_acquire());
  EXPECT_EQ(budget.take_grants(1).size(), 1u);
}

TEST(UpstreamBudget, EnqueueWhileASlotIsFreeIsGrantedAtOnce) {
  Woken woken;
  UpstreamBudget budget(1, 1, woken.callback());
  auto ticket = budget.enqueue(0);
  EXPECT_EQ(woken.threads, std::vector<std::size_t>{0});
  EXPECT_EQ(budget.take_grants(0), std::vector<UpstreamBudget::Ticket>{ticket});
  EXPECT_EQ(budget.in_use(), 1u);
  EXPECT_EQ(budget.waiting(), 0u);
}

TEST(UpstreamBudget, LocalWaiterTakesAReusableConnectionWithinTheSlack) {
  Woken woken;
  using namespace std::chrono_literals;
  UpstreamBudget budget(1, 2, woken.callback(), 5ms);
  ASSERT_TRUE(budget.try_acquire());
  auto t0 = UpstreamBudget::Clock::now();
  auto on_one = budget.enqueue(1, t0);
  auto on_zero_late = budget.enqueue(0, t0 + 6ms);
  EXPECT_EQ(budget.take_local_waiter(0, t0), 0u) << "thread 1's waiter is older by more than the slack";
  EXPECT_EQ(budget.take_local_waiter(1, t0 + 6ms), on_one);
  EXPECT_EQ(budget.take_local_waiter(0, t0 + 6ms), on_zero_late) << "the oldest now";
  auto on_one_again = budget.enqueue(1, t0 + 10ms);
  auto on_zero = budget.enqueue(0, t0 + 12ms);
  EXPECT_EQ(budget.take_local_waiter(0, t0 + 12ms), on_zero) << "2 ms after the oldest: within the slack, no churn";
  EXPECT_EQ(budget.take_local_waiter(1, t0 + 12ms), on_one_again);
  EXPECT_EQ(budget.take_local_waiter(1, t0 + 12ms), 0u);
  EXPECT_TRUE(woken.threads.empty());
}

TEST(UpstreamBudget, LocalWaiterTakesAReusableConnectionOnlyWhenOldestWithoutSlack) {
  Woken woken;
  UpstreamBudget budget(1, 2, woken.callback(), UpstreamBudget::Clock::duration::zero());
  ASSERT_TRUE(budget.try_acquire());
  auto t0 = UpstreamBudget::Clock::now();
  auto on_one = budget.enqueue(1, t0);
  auto now = t0 + std::chrono::microseconds(1);  // given, not read: a slow run must not widen the share
  auto on_zero = budget.enqueue(0, now);
  EXPECT_EQ(budget.take_local_waiter(0, now), 0u) << "thread 1's waiter is older";
  EXPECT_EQ(budget.take_local_waiter(1, now), on_one);
  EXPECT_EQ(budget.in_use(), 1u) << "the connection and its slot changed hands";
  EXPECT_EQ(budget.take_local_waiter(0, now), on_zero);
  EXPECT_EQ(budget.take_local_waiter(0, now), 0u);
  EXPECT_TRUE(woken.threads.empty());
}

TEST(UpstreamBudget, LocalWaiterKeepsTheConnectionWhileItHasWaitedAQuarterAsLong) {
  Woken woken;
  using namespace std::chrono_literals;
  UpstreamBudget budget(1, 2, woken.callback(), 5ms);
  ASSERT_TRUE(budget.try_acquire());
  auto t0 = UpstreamBudget::Clock::now();
  auto on_one = budget.enqueue(1, t0);
  auto on_zero = budget.enqueue(0, t0 + 70ms);
  EXPECT_EQ(budget.take_local_waiter(0, t0 + 80ms), 0u) << "waited 10 ms of the oldest's 80: the slot moves";
  EXPECT_EQ(budget.take_local_waiter(0, t0 + 100ms), on_zero) << "waited 30 ms of the oldest's 100: stays";
  EXPECT_EQ(budget.take_local_waiter(1, t0 + 100ms), on_one);
  EXPECT_TRUE(woken.threads.empty());
}

TEST(UpstreamBudget, CancelLeavesTheQueueOrPassesAGrantedSlotOn) {
  Woken woken;
  UpstreamBudget budget(1, 2, woken.callback());
  ASSERT_TRUE(budget.try_acquire());
  auto gives_up = budget.enqueue(0);
  auto granted_then_gone = budget.enqueue(1);
  auto last = budget.enqueue(0);
  budget.cancel(0, gives_up);
  EXPECT_EQ(budget.waiting(), 2u);
  budget.release();  // to granted_then_gone
  EXPECT_EQ(woken.threads, std::vector<std::size_t>{1});
  budget.cancel(1, granted_then_gone);  // before thread 1 took it: on to `last`
  EXPECT_TRUE(budget.take_grants(1).empty());
  EXPECT_EQ(budget.take_grants(0), std::vector<UpstreamBudget::Ticket>{last});
  EXPECT_EQ(budget.in_use(), 1u);
  budget.cancel(0, 12345);  // unknown: nothing happens
  EXPECT_EQ(budget.in_use(), 1u);
}

TEST(UpstreamBudget, RejectsAZeroLimit) {
  EXPECT_THROW(UpstreamBudget(0, 1, [](std::size_t) {}), std::invalid_argument);
}

// Many threads acquiring, queueing and releasing: the cap holds at every
// moment and every waiter is served.
TEST(UpstreamBudget, CapHoldsUnderContention) {
  constexpr std::size_t kThreads = 4, kLimit = 3, kRounds = 2000;
  std::atomic<std::size_t> held{0}, peak{0}, served{0};
  std::vector<std::atomic<int>> signals(kThreads);
  UpstreamBudget budget(kLimit, kThreads, [&](std::size_t t) { signals[t].fetch_add(1); });
  auto hold = [&] {
    std::size_t now = held.fetch_add(1) + 1;
    std::size_t seen = peak.load();
    while (now > seen && !peak.compare_exchange_weak(seen, now)) {}
    held.fetch_sub(1);
    budget.release();
    served.fetch_add(1);
  };
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (std::size_t round = 0; round < kRounds; ++round) {
        if (budget.try_acquire()) {
          hold();
          continue;
        }
        auto ticket = budget.enqueue(t);
        for (;;) {
          auto grants = budget.take_grants(t);
          if (!grants.empty()) {
            ASSERT_EQ(grants, std::vector<UpstreamBudget::Ticket>{ticket});
            hold();
            break;
          }
          std::this_thread::yield();
        }
      }
    });
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(served.load(), kThreads * kRounds);
  EXPECT_LE(peak.load(), kLimit);
  EXPECT_EQ(budget.in_use(), 0u);
  EXPECT_EQ(budget.waiting(), 0u);
}

}  // namespace
}  // namespace regmeter
