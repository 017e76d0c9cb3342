// Operational log lines on stderr: "2026-11-25T10:00:00Z level message".
#pragma once

#include <string_view>

#include <fmt/format.h>

namespace regmeter {

enum class LogLevel { debug, info, warn, error };

void log_line(LogLevel level, std::string_view message);
void set_log_level(LogLevel minimum);
enum class LogFormat { text, json };
void set_log_format(LogFormat format);

template <typename... Args>
void log_info(fmt::format_string<Args...> format, Args&&... args) {
  log_line(LogLevel::info, fmt::format(format, std::forward<Args>(args)...));
}
template <typename... Args>
void log_warn(fmt::format_string<Args...> format, Args&&... args) {
  log_line(LogLevel::warn, fmt::format(format, std::forward<Args>(args)...));
}
template <typename... Args>
void log_error(fmt::format_string<Args...> format, Args&&... args) {
  log_line(LogLevel::error, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace regmeter
