#include "core/upstream_budget.h"

#include <algorithm>
#include <stdexcept>

namespace regmeter {

// Memory order: release() decrements in_use_ and then reads waiting_;
// enqueue() publishes waiting_ and then reads in_use_ (both seq_cst). So
// at least one of them sees the other, and a slot freed while a request
// joins the queue is never left unused.

UpstreamBudget::UpstreamBudget(std::size_t limit, std::size_t threads, std::function<void(std::size_t)> wake,
                               Clock::duration local_slack)
    : limit_(limit), local_slack_(local_slack), wake_(std::move(wake)), granted_(threads) {
  if (limit == 0 || threads == 0) throw std::invalid_argument("UpstreamBudget: limit and threads must be > 0");
}

bool UpstreamBudget::try_acquire() {
  // Someone already waits: join the queue behind them instead of taking a
  // slot that frees up now (it is theirs).
  if (waiting_.load() > 0) return false;
  std::size_t used = in_use_.load();
  while (used < limit_)
    if (in_use_.compare_exchange_weak(used, used + 1)) return true;
  return false;
}

void UpstreamBudget::grant_free_slots_locked() {
  while (!queue_.empty()) {
    std::size_t used = in_use_.load();
    if (used >= limit_) return;
    if (!in_use_.compare_exchange_weak(used, used + 1)) continue;
    Waiter next = queue_.front();
    queue_.pop_front();
    waiting_.store(queue_.size());
    granted_[next.thread].push_back(next.ticket);
    wake_(next.thread);
  }
}

UpstreamBudget::Ticket UpstreamBudget::enqueue(std::size_t thread, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  Ticket ticket = next_ticket_++;
  queue_.push_back({thread, ticket, now});
  waiting_.store(queue_.size());
  grant_free_slots_locked();
  return ticket;
}

void UpstreamBudget::release() {
  // Hand the slot straight to the oldest waiter when there is one: in_use_
  // never dips, so no try_acquire can take it first.
  if (waiting_.load() > 0) {
    std::lock_guard lock(mutex_);
    if (!queue_.empty()) {
      Waiter next = queue_.front();
      queue_.pop_front();
      waiting_.store(queue_.size());
      granted_[next.thread].push_back(next.ticket);
      wake_(next.thread);
      return;
    }
  }
  in_use_.fetch_sub(1);
  if (waiting_.load() > 0) {
    std::lock_guard lock(mutex_);
    grant_free_slots_locked();
  }
}

UpstreamBudget::Ticket UpstreamBudget::take_local_waiter(std::size_t thread, Clock::time_point now) {
  if (waiting_.load() == 0) return 0;
  std::lock_guard lock(mutex_);
  if (queue_.empty()) return 0;
  const Clock::time_point oldest = queue_.front().since;
  // Arrived at most this long after the oldest: the slack, or (its wait x
  // share >= the oldest's wait) all that arrived in the first 3/4 of it.
  const Clock::duration longest_wait = now - oldest;
  const Clock::duration gap = std::max(local_slack_, longest_wait - longest_wait / kLocalWaitShare);
  for (auto it = queue_.begin(); it != queue_.end() && it->since - oldest <= gap; ++it) {
    if (it->thread != thread) continue;
    Ticket ticket = it->ticket;
    queue_.erase(it);
    waiting_.store(queue_.size());
    return ticket;
  }
  return 0;
}

std::vector<UpstreamBudget::Ticket> UpstreamBudget::take_grants(std::size_t thread) {
  std::lock_guard lock(mutex_);
  std::vector<Ticket> grants;
  grants.swap(granted_.at(thread));
  return grants;
}

void UpstreamBudget::cancel(std::size_t thread, Ticket ticket) {
  {
    std::lock_guard lock(mutex_);
    auto queued = std::find_if(queue_.begin(), queue_.end(), [&](const Waiter& w) { return w.ticket == ticket; });
    if (queued != queue_.end()) {
      queue_.erase(queued);
      waiting_.store(queue_.size());
      return;
    }
    auto& grants = granted_.at(thread);
    auto granted = std::find(grants.begin(), grants.end(), ticket);
    if (granted == grants.end()) return;
    grants.erase(granted);
  }
  release();  // it owned a slot it will not use
}

}  // namespace regmeter
