#include "core/log_limit.h"

#include <functional>

#include <fmt/format.h>

namespace regmeter {

namespace {
std::uint64_t key_of(std::string_view text) {
  std::uint64_t key = std::hash<std::string_view>{}(text);
  return key == 0 ? 1 : key;  // 0 marks a free slot
}
}  // namespace

std::string with_repeat_count(std::string_view text, std::uint64_t repeats, std::int64_t over_ns) {
  return fmt::format("{} (repeated {} time{} in the last {:.0f} s)", text, repeats, repeats == 1 ? "" : "s",
                     static_cast<double>(over_ns) / 1e9);
}

// A full scan: 64 relaxed loads, and slots are reassigned anywhere (claim), so
// stopping at the first free slot would miss some.
RepeatLimiter::Slot* RepeatLimiter::find(std::uint64_t key) {
  for (auto& slot : slots_)
    if (slot.key.load(std::memory_order_acquire) == key) return &slot;
  return nullptr;
}

// A free slot, else one whose line has been quiet for an interval with
// nothing counted. Two threads claiming the same new line at once may take
// two slots: both write it, nothing is lost, and the spare goes stale.
RepeatLimiter::Slot* RepeatLimiter::claim(std::uint64_t key, std::int64_t now_ns) {
  auto take = [&](Slot& slot, std::uint64_t expected) {
    if (!slot.key.compare_exchange_strong(expected, key, std::memory_order_acq_rel)) return false;
    slot.last_written_ns.store(now_ns, std::memory_order_release);
    // Counted for the previous line after the claim checked: not lost, but no
    // longer that line's.
    if (std::uint64_t left = slot.repeats.exchange(0, std::memory_order_acq_rel)) {
      untracked_.fetch_add(left, std::memory_order_relaxed);
      std::int64_t none = -1;
      untracked_since_ns_.compare_exchange_strong(none, now_ns, std::memory_order_relaxed);
    }
    return true;
  };
  for (auto& slot : slots_)
    if (slot.key.load(std::memory_order_relaxed) == 0 && take(slot, 0)) return &slot;
  for (auto& slot : slots_) {
    std::uint64_t held = slot.key.load(std::memory_order_relaxed);
    bool stale = now_ns - slot.last_written_ns.load(std::memory_order_relaxed) >= interval_ns_ &&
                 slot.repeats.load(std::memory_order_relaxed) == 0;
    if (stale && take(slot, held)) return &slot;
  }
  return nullptr;
}

std::string RepeatLimiter::written(Slot& slot, std::string_view text, std::uint64_t repeats, std::int64_t since_ns,
                                   std::int64_t now_ns) {
  {
    std::lock_guard lock(written_mutex_);
    slot.text.assign(text);
  }
  return repeats == 0 ? std::string(text) : with_repeat_count(text, repeats, now_ns - since_ns);
}

std::string RepeatLimiter::admit(std::string_view text, std::int64_t now_ns) {
  std::uint64_t key = key_of(text);
  Slot* slot = find(key);
  if (!slot) {
    slot = claim(key, now_ns);
    if (!slot) {
      untracked_.fetch_add(1, std::memory_order_relaxed);
      std::int64_t none = -1;
      untracked_since_ns_.compare_exchange_strong(none, now_ns, std::memory_order_relaxed);
      return {};
    }
    return written(*slot, text, 0, now_ns, now_ns);
  }
  std::int64_t last = slot->last_written_ns.load(std::memory_order_acquire);
  // One thread per interval wins the right to write; the others count.
  if (now_ns - last < interval_ns_ ||
      !slot->last_written_ns.compare_exchange_strong(last, now_ns, std::memory_order_acq_rel)) {
    slot->repeats.fetch_add(1, std::memory_order_relaxed);
    return {};
  }
  return written(*slot, text, slot->repeats.exchange(0, std::memory_order_acq_rel), last, now_ns);
}

std::vector<std::string> RepeatLimiter::take_summaries(std::int64_t now_ns, bool all) {
  std::vector<std::string> out;
  for (auto& slot : slots_) {
    if (slot.key.load(std::memory_order_acquire) == 0 || slot.repeats.load(std::memory_order_relaxed) == 0) continue;
    std::int64_t last = slot.last_written_ns.load(std::memory_order_acquire);
    if ((!all && now_ns - last < interval_ns_) ||
        !slot.last_written_ns.compare_exchange_strong(last, now_ns, std::memory_order_acq_rel))
      continue;
    if (std::uint64_t repeats = slot.repeats.exchange(0, std::memory_order_acq_rel)) {
      std::lock_guard lock(written_mutex_);
      out.push_back(with_repeat_count(slot.text, repeats, now_ns - last));
    }
  }
  std::int64_t since = untracked_since_ns_.load(std::memory_order_relaxed);
  if (since >= 0 && (all || now_ns - since >= interval_ns_)) {
    untracked_since_ns_.store(-1, std::memory_order_relaxed);  // before the exchange: later counts set it again
    if (std::uint64_t lines = untracked_.exchange(0, std::memory_order_acq_rel))
      out.push_back(fmt::format("{} more log line{} not written in the last {:.0f} s (over {} different lines "
                                "were repeating at once)",
                                lines, lines == 1 ? "" : "s", static_cast<double>(now_ns - since) / 1e9, kSlots));
  }
  return out;
}

}  // namespace regmeter
