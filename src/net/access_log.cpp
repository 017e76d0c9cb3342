#include "net/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <stdexcept>

#include <fmt/format.h>

#include "core/log.h"

namespace regmeter {

namespace {
constexpr std::size_t kBatchBytes = 64 * 1024;
// Beyond this much unwritten log, lines are dropped (and counted) rather
// than letting memory grow behind a stuck disk.
constexpr std::size_t kMaxQueuedBytes = 64 * 1024 * 1024;
}  // namespace

AccessLogSink::AccessLogSink(const std::string& where) : where_(where) {
  fd_ = open_target();
  if (fd_ < 0) throw std::runtime_error(fmt::format("access-log {}: {}", where_, std::strerror(errno)));
  writer_ = std::thread([this] { run(); });
}

AccessLogSink::~AccessLogSink() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  writer_.join();
  if (fd_ >= 0 && where_ != "stdout") ::close(fd_);
}

int AccessLogSink::open_target() {
  if (where_ == "stdout") return STDOUT_FILENO;
  return ::open(where_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

void AccessLogSink::submit(std::string batch, std::size_t lines) {
  {
    std::lock_guard lock(mutex_);
    if (queued_bytes_ + batch.size() > kMaxQueuedBytes) {
      dropped_lines_ += lines;
      return;
    }
    queued_bytes_ += batch.size();
    queue_.push_back(std::move(batch));
  }
  wake_.notify_one();
}

void AccessLogSink::request_reopen() {
  reopen_ = true;
  wake_.notify_one();
}

void AccessLogSink::run() {
  std::uint64_t dropped_reported = 0;
  while (true) {
    std::deque<std::string> batches;
    bool stop = false;
    {
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_ || !queue_.empty() || reopen_; });
      batches.swap(queue_);
      queued_bytes_ = 0;
      stop = stopping_;
    }
    if (reopen_.exchange(false) && where_ != "stdout") {
      int fresh = open_target();
      if (fresh >= 0) {
        ::close(fd_);
        fd_ = fresh;
        log_info("access log {} reopened", where_);
      } else {
        log_error("access log {}: cannot reopen ({}); still writing to the old file", where_, std::strerror(errno));
      }
    }
    for (const auto& batch : batches) {
      std::size_t written = 0;
      // Bounded: each round writes something or gives up on this batch.
      while (written < batch.size()) {
        ssize_t n = ::write(fd_, batch.data() + written, batch.size() - written);
        if (n > 0) {
          written += static_cast<std::size_t>(n);
        } else if (n < 0 && errno == EINTR) {
          continue;
        } else {
          log_error("access log {}: write failed: {}", where_, std::strerror(errno));
          break;
        }
      }
    }
    if (std::uint64_t dropped = dropped_lines_.load(); dropped != dropped_reported) {
      log_warn("access log {}: {} line(s) dropped so far: the writer cannot keep up", where_, dropped);
      dropped_reported = dropped;
    }
    if (stop) {
      std::lock_guard lock(mutex_);
      if (queue_.empty()) return;
    }
  }
}

void AccessLogBuffer::add(const AccessRecord& record) {
  if (!sink_) return;
  format_access_line(buffer_, record);
  line_added();
}

void AccessLogBuffer::add(const AccessEvent& event) {
  if (!sink_) return;
  format_access_event(buffer_, event);
  line_added();
}

void AccessLogBuffer::line_added() {
  ++lines_;
  if (buffer_.size() >= kBatchBytes) flush();
}

void AccessLogBuffer::flush() {
  if (!sink_ || buffer_.empty()) return;
  sink_->submit(std::move(buffer_), lines_);
  buffer_ = std::string();
  buffer_.reserve(kBatchBytes + 1024);
  lines_ = 0;
}

}  // namespace regmeter
