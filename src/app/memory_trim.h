// Gives the memory of a traffic burst back to the kernel once the proxy is
// quiet. At start regmeter tells glibc to keep freed buffers on the heap
// (M_MMAP_THRESHOLD 4 MiB, M_TRIM_THRESHOLD 4 MiB): a busy proxy then reuses
// its 512 KiB read chains instead of faulting fresh pages in for every read.
// The price is freed chains held inside the heaps; this trimmer calls
// malloc_trim() when no request has been in flight for a whole tick after
// some traffic, so an idle proxy's RSS returns close to its baseline.
#pragma once

#include <chrono>
#include <cstdint>

struct event;
struct event_base;

namespace regmeter {

class Metrics;

class IdleMemoryTrimmer {
 public:
  IdleMemoryTrimmer(event_base* base, const Metrics& metrics, std::chrono::milliseconds tick);
  ~IdleMemoryTrimmer();
  IdleMemoryTrimmer(const IdleMemoryTrimmer&) = delete;
  IdleMemoryTrimmer& operator=(const IdleMemoryTrimmer&) = delete;

  std::uint64_t trims() const { return trims_; }

 private:
  static void on_tick(int, short, void* arg);
  void tick();

  const Metrics& metrics_;
  event* timer_ = nullptr;
  std::uint64_t started_at_last_tick_ = 0;
  std::uint64_t started_at_last_trim_ = 0;
  bool quiet_last_tick_ = false;
  std::uint64_t trims_ = 0;
};

}  // namespace regmeter
