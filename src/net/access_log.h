// The access log: one JSON line per finished request, and one per event that
// is not a request (an upload session given up on, a refused connection).
// Worker threads format lines into their own buffer and hand over whole
// batches; one writer thread does the blocking writes, so a slow disk never
// stalls an event loop.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/access_record.h"

namespace regmeter {

class AccessLogSink {
 public:
  // "stdout" or a file path (appended to, created if missing). Throws
  // std::runtime_error naming the file and the reason.
  explicit AccessLogSink(const std::string& where);
  ~AccessLogSink();  // writes what is queued, then stops the writer
  AccessLogSink(const AccessLogSink&) = delete;
  AccessLogSink& operator=(const AccessLogSink&) = delete;

  void submit(std::string batch, std::size_t lines);  // from any thread
  void request_reopen();                              // SIGUSR1: logrotate moved the file
  std::uint64_t dropped_lines() const { return dropped_lines_.load(); }

 private:
  void run();
  int open_target();

  std::string where_;
  int fd_ = -1;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::string> queue_;
  std::size_t queued_bytes_ = 0;
  bool stopping_ = false;
  std::atomic<bool> reopen_{false};
  std::atomic<std::uint64_t> dropped_lines_{0};
  std::thread writer_;
};

// One per worker thread: collects lines, hands them over in batches.
class AccessLogBuffer {
 public:
  explicit AccessLogBuffer(AccessLogSink* sink) : sink_(sink) {}
  ~AccessLogBuffer() { flush(); }
  bool enabled() const { return sink_ != nullptr; }
  void add(const AccessRecord& record);
  void add(const AccessEvent& event);
  void flush();

 private:
  void line_added();
  AccessLogSink* sink_;
  std::string buffer_;
  std::size_t lines_ = 0;
};

}  // namespace regmeter
