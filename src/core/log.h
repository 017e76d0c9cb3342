// Operational log lines on stderr: "2026-11-25T10:00:00Z level message".
#pragma once

#include <algorithm>
#include <cstddef>
#include <string_view>

#include <fmt/format.h>

namespace regmeter {

enum class LogLevel { debug, info, warn, error };

void log_line(LogLevel level, std::string_view message);
void set_log_level(LogLevel minimum);
enum class LogFormat { text, json };
void set_log_format(LogFormat format);
bool log_enabled(LogLevel level);

// For lines that can come once per request or connection (upstream failures,
// stalled clients): the same text again within 10 s is only counted, and the
// count is written with the next line for it (log_limit.h). Formatted into a
// stack buffer, so a counted line costs neither a lock nor an allocation.
void log_line_limited(LogLevel level, std::string_view message);
// Writes the counts of limited lines that stopped repeating: run every second
// (server.cpp), and at exit with `at_exit` (every count still held).
void flush_repeated_log_lines(bool at_exit = false);
inline constexpr std::size_t kMaxLimitedLine = 1024;  // longer texts are cut

template <typename... Args>
void log_limited(LogLevel level, fmt::format_string<Args...> format, Args&&... args) {
  if (!log_enabled(level)) return;
  char text[kMaxLimitedLine];
  auto end = fmt::format_to_n(text, sizeof text, format, std::forward<Args>(args)...);
  log_line_limited(level, std::string_view(text, std::min(end.size, sizeof text)));
}

template <typename... Args>
void log_info(fmt::format_string<Args...> format, Args&&... args) {
  log_line(LogLevel::info, fmt::format(format, std::forward<Args>(args)...));
}
template <typename... Args>
void log_warn(fmt::format_string<Args...> format, Args&&... args) {
  log_line(LogLevel::warn, fmt::format(format, std::forward<Args>(args)...));
}
template <typename... Args>
void log_warn_limited(fmt::format_string<Args...> format, Args&&... args) {
  log_limited(LogLevel::warn, format, std::forward<Args>(args)...);
}
template <typename... Args>
void log_error(fmt::format_string<Args...> format, Args&&... args) {
  log_line(LogLevel::error, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace regmeter
