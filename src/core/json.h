// Writing JSON text by hand, for the few small objects we emit (error
// bodies, access-log lines, JSON operational logs).
#pragma once

#include <string>
#include <string_view>

namespace regmeter {

// Appends `text` as a quoted JSON string: quotes, backslashes and control
// bytes escaped; other bytes as they are.
void append_json_string(std::string& out, std::string_view text);

inline std::string json_string(std::string_view text) {
  std::string out;
  append_json_string(out, text);
  return out;
}

}  // namespace regmeter
