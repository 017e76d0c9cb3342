// Rate limiting for repeated operational log lines. When the registry goes
// down every request fails the same way, and a warning per request would
// bury everything else on stderr. A line is written the first time; the
// same text again within the interval is only counted; the count comes out
// with the next line written for it, at most one per interval:
//
//   upstream 127.0.0.1:5000: connect: Connection refused (repeated 5730 times in the last 10 s)
//
// Lock-free and allocation-free for a line that is counted and not written
// (atomics in a fixed table); taking a lock is left to the lines written.
// Time is passed in by the caller, so tests drive the clock.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace regmeter {

class RepeatLimiter {
 public:
  // Different lines tracked at once; more different lines within an interval
  // are counted together (see take_summaries).
  static constexpr std::size_t kSlots = 64;

  explicit RepeatLimiter(std::int64_t interval_ns) : interval_ns_(interval_ns) {}
  RepeatLimiter(const RepeatLimiter&) = delete;
  RepeatLimiter& operator=(const RepeatLimiter&) = delete;

  // One occurrence of `text` at `now_ns` (a monotonic clock). Returns the
  // line to write, or an empty string when this occurrence is only counted.
  std::string admit(std::string_view text, std::int64_t now_ns);

  // Summaries for lines that were counted but have not been written for an
  // interval (they stopped repeating, so no later occurrence carries their
  // count), and for lines the full table could not track. Call it now and
  // then (a timer), and once at exit with `all`: every count still held.
  std::vector<std::string> take_summaries(std::int64_t now_ns, bool all = false);

 private:
  struct Slot {
    std::atomic<std::uint64_t> key{0};  // hash of the text; 0: free
    std::atomic<std::int64_t> last_written_ns{0};
    std::atomic<std::uint64_t> repeats{0};  // occurrences counted since last_written_ns
    std::string text;  // the last text written, for summaries; under written_mutex_
  };

  Slot* find(std::uint64_t key);
  Slot* claim(std::uint64_t key, std::int64_t now_ns);
  std::string written(Slot& slot, std::string_view text, std::uint64_t repeats, std::int64_t since_ns,
                      std::int64_t now_ns);

  const std::int64_t interval_ns_;
  std::array<Slot, kSlots> slots_;
  std::atomic<std::uint64_t> untracked_{0};        // counted, in no slot (table full)
  std::atomic<std::int64_t> untracked_since_ns_{-1};  // first of those; -1: none
  std::mutex written_mutex_;                         // only lines being written take it
};

// "TEXT (repeated N times in the last S s)".
std::string with_repeat_count(std::string_view text, std::uint64_t repeats, std::int64_t over_ns);

}  // namespace regmeter
