// The process-wide cap on open upstream connections (--upstream-max-connections)
// and the one FIFO queue of requests waiting for a slot, across all threads.
// Pure and thread-safe: it hands out slots and says which thread to wake;
// waking and dialling are the caller's (src/net/upstream.cpp).
//
// Fairness: one queue in arrival order for the whole process, so a request
// never waits behind later arrivals on another thread. A slot that frees up
// goes to the oldest waiter wherever it is; a connection that could be reused
// stays open only when that oldest waiter is on the same thread (it takes the
// connection as is), otherwise it is closed and its slot moves.
#pragma once

#include <atomic>
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

  // `limit` slots (> 0) shared by `threads` threads (indexes 0..threads-1).
  // `wake(thread)` is called (from any thread, maybe under the budget's
  // lock: it must only signal) when `thread` has new grants to take.
  UpstreamBudget(std::size_t limit, std::size_t threads, std::function<void(std::size_t)> wake);

  std::size_t limit() const { return limit_; }
  // A slot at once: only while under the limit and nobody waits (waiters
  // are served first, in order). Lock-free.
  bool try_acquire();
  // Joins the queue; the slot arrives later through take_grants(thread)
  // (maybe at once, when one freed up meanwhile: `thread` is woken then too).
  Ticket enqueue(std::size_t thread);
  // A slot is given up (its connection closed). It goes to the oldest waiter
  // (whose thread is woken and finds it in take_grants), or back to the
  // free slots. Lock-free while nobody waits.
  void release();
  // A connection is free and reusable: when the oldest waiter is on
  // `thread`, it leaves the queue and its ticket is returned (it takes the
  // connection and its slot). 0 otherwise.
  Ticket take_local_waiter(std::size_t thread);
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
  };
  // Hands free slots to the oldest waiters while both exist.
  void grant_free_slots_locked();

  const std::size_t limit_;
  const std::function<void(std::size_t)> wake_;
  std::atomic<std::size_t> in_use_{0};
  std::atomic<std::size_t> waiting_{0};
  std::mutex mutex_;  // the queue and the grants; taken only when requests wait
  std::deque<Waiter> queue_;
  std::vector<std::vector<Ticket>> granted_;  // per thread
  Ticket next_ticket_ = 1;
};

}  // namespace regmeter
