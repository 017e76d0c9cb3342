// The process-wide cap on open upstream connections (--upstream-max-connections)
// and the one FIFO queue of requests waiting for a slot, across all threads.
// Pure and thread-safe: it hands out slots and says which thread to wake;
// waking and dialling are the caller's (src/net/upstream.cpp).
//
// Fairness: one queue in arrival order for the whole process. A slot that
// frees up (a connection closed) goes to the oldest waiter wherever it is.
// A connection that is free and reusable cannot change threads, so moving
// its slot to another thread costs a close and a new connect (a TLS
// handshake, for a TLS registry): it stays on its thread for the oldest
// local waiter when that one arrived at most `local_slack` after the oldest
// waiter overall, or has waited at least a quarter as long as that one
// (kLocalWaitShare), and only otherwise is closed so its slot moves. Threads
// with steady demand keep their connections (no churn at the registry); a
// thread that falls behind gets slots in FIFO order, so no waiter waits more
// than four times as long as one served elsewhere (or the slack longer).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <vector>

namespace regmeter {

class UpstreamBudget {
 public:
  using Ticket = std::uint64_t;  // one waiting request; never 0
  using Clock = std::chrono::steady_clock;
  // 50 ms: well below the queue timeout and a registry's own latency for a
  // manifest, and enough that 50 clients over 4 connections on 2 threads
  // open 0.4 % new connections instead of 16 % (5 ms), measured by
  // tests/e2e/upstream_queue.sh (figure upstream_queue_new_connections).
  static constexpr std::chrono::milliseconds kDefaultLocalSlack{50};
  // Under a deep queue the waits are hundreds of ms, and the two threads'
  // oldest waiters drift apart by more than the slack whenever one thread is
  // descheduled for a moment; moving a slot then (a close and a connect)
  // does not serve anyone sooner. A share of the wait scales with the queue:
  // tests/bench/run.sh storm4k_cap (4000 clients, cap 64) opened a new
  // upstream connection for 2.3-3.3 % of requests with the slack alone, for
  // 0.09-0.16 % with a quarter (0.17-1.1 % with a half), p99 alike.
  static constexpr int kLocalWaitShare = 4;  // a local waiter's wait x this >= the oldest's

  // `limit` slots (> 0) shared by `threads` threads (indexes 0..threads-1).
  // `wake(thread)` is called (from any thread, maybe under the budget's
  // lock: it must only signal) when `thread` has new grants to take.
  UpstreamBudget(std::size_t limit, std::size_t threads, std::function<void(std::size_t)> wake,
                 Clock::duration local_slack = kDefaultLocalSlack);

  std::size_t limit() const { return limit_; }
  // A slot at once: only while under the limit and nobody waits (waiters
  // are served first, in order). Lock-free.
  bool try_acquire();
  // Joins the queue; the slot arrives later through take_grants(thread)
  // (maybe at once, when one freed up meanwhile: `thread` is woken then too).
  Ticket enqueue(std::size_t thread, Clock::time_point now = Clock::now());
  // A slot is given up (its connection closed). It goes to the oldest waiter
  // (whose thread is woken and finds it in take_grants), or back to the
  // free slots. Lock-free while nobody waits.
  void release();
  // A connection is free and reusable on `thread`: the oldest waiter there
  // leaves the queue and its ticket is returned (it takes the connection and
  // its slot) when it is the oldest overall, arrived within the slack of it
  // or has waited a quarter as long. 0 otherwise (close the connection:
  // release() moves its slot).
  Ticket take_local_waiter(std::size_t thread, Clock::time_point now = Clock::now());
  // The tickets of `thread` that were granted a slot since the last call,
  // oldest first. Each now owns one slot.
  std::vector<Ticket> take_grants(std::size_t thread);
  // The waiter gives up (timeout, client gone). When it had already been
  // granted a slot, the slot is released on, as by release().
  void cancel(std::size_t thread, Ticket ticket);

  // Requests waiting (not yet granted), and slots in use: for gauges and for
  // deciding whether idle connections should make room. Relaxed reads.
  std::size_t waiting() const { return waiting_.load(std::memory_order_relaxed); }
  std::size_t in_use() const { return in_use_.load(std::memory_order_relaxed); }

 private:
  struct Waiter {
    std::size_t thread;
    Ticket ticket;
    Clock::time_point since;
  };
  // Hands free slots to the oldest waiters while both exist.
  void grant_free_slots_locked();

  const std::size_t limit_;
  const Clock::duration local_slack_;
  const std::function<void(std::size_t)> wake_;
  std::atomic<std::size_t> in_use_{0};
  std::atomic<std::size_t> waiting_{0};
  std::mutex mutex_;  // the queue and the grants; taken only when requests wait
  std::deque<Waiter> queue_;
  std::vector<std::vector<Ticket>> granted_;  // per thread
  Ticket next_ticket_ = 1;
};

}  // namespace regmeter
