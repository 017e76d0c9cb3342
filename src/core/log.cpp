#include "core/log.h"

#include <string>

#include "core/json.h"
#include "core/log_limit.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace regmeter {

namespace {
std::atomic<LogLevel> g_minimum{LogLevel::info};
std::atomic<LogFormat> g_format{LogFormat::text};

constexpr std::int64_t kRepeatIntervalNs = 10'000'000'000;

// One limiter per level: the same text at two levels is two lines.
RepeatLimiter& limiter(LogLevel level) {
  static RepeatLimiter limiters[4] = {RepeatLimiter(kRepeatIntervalNs), RepeatLimiter(kRepeatIntervalNs),
                                      RepeatLimiter(kRepeatIntervalNs), RepeatLimiter(kRepeatIntervalNs)};
  return limiters[static_cast<int>(level)];
}

std::int64_t monotonic_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

const char* level_name(LogLevel level) {
  switch (level) {
    case LogLevel::debug: return "debug";
    case LogLevel::info: return "info";
    case LogLevel::warn: return "warn";
    case LogLevel::error: return "error";
  }
  return "info";
}
}  // namespace

void set_log_level(LogLevel minimum) { g_minimum = minimum; }
void set_log_format(LogFormat format) { g_format = format; }
bool log_enabled(LogLevel level) { return level >= g_minimum.load(std::memory_order_relaxed); }

void log_line_limited(LogLevel level, std::string_view message) {
  std::string line = limiter(level).admit(message, monotonic_ns());
  if (!line.empty()) log_line(level, line);
}

void flush_repeated_log_lines(bool at_exit) {
  std::int64_t now = monotonic_ns();
  for (LogLevel level : {LogLevel::debug, LogLevel::info, LogLevel::warn, LogLevel::error})
    for (const std::string& line : limiter(level).take_summaries(now, at_exit)) log_line(level, line);
}

void log_line(LogLevel level, std::string_view message) {
  if (!log_enabled(level)) return;
  auto now = std::chrono::system_clock::now();
  std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &utc);
  // One fprintf per line: stdio locks the stream, so threads don't interleave.
  if (g_format.load(std::memory_order_relaxed) == LogFormat::json) {
    std::string line = std::string("{\"time\":\"") + stamp + "\",\"level\":\"" + level_name(level) + "\",\"msg\":";
    append_json_string(line, message);
    std::fprintf(stderr, "%s}\n", line.c_str());
    return;
  }
  std::fprintf(stderr, "%s %s %.*s\n", stamp, level_name(level), static_cast<int>(message.size()),
               message.data());
}

}  // namespace regmeter
