#include "net/upstream_limit.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

namespace regmeter {

UpstreamLimiter::UpstreamLimiter(std::size_t limit, std::size_t threads, UpstreamGauges gauges)
    : idle_(new PaddedCount[threads]), threads_(threads), gauges_(gauges) {
  for (std::size_t i = 0; i < threads; ++i) {
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) throw std::runtime_error(fmt::format("eventfd: {}", std::strerror(errno)));
    wake_fds_.push_back(fd);
  }
  if (limit > 0)
    budget_ = std::make_unique<UpstreamBudget>(limit, threads, [this](std::size_t thread) { wake(thread); });
}

UpstreamLimiter::~UpstreamLimiter() {
  budget_.reset();
  for (int fd : wake_fds_) close(fd);
}

void UpstreamLimiter::wake(std::size_t thread) {
  std::uint64_t one = 1;
  // Fails only when the counter would overflow: the thread is awake anyway.
  [[maybe_unused]] ssize_t written = write(wake_fds_.at(thread), &one, sizeof one);
}

void UpstreamLimiter::ask_for_room(std::size_t thread) {
  for (std::size_t other = 0; other < threads_; ++other)
    if (other != thread && idle_[other].value.load(std::memory_order_relaxed) > 0) wake(other);
}

}  // namespace regmeter
