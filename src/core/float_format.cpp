#include "core/float_format.h"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <string_view>

namespace regmeter {

void append_go_float(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
    return;
  }
  if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
    return;
  }
  std::array<char, 64> buf{};
  auto sci = std::to_chars(buf.data(), buf.data() + buf.size(), v, std::chars_format::scientific);
  std::string_view s(buf.data(), static_cast<std::size_t>(sci.ptr - buf.data()));
  int exponent = std::atoi(s.data() + s.find('e') + 1);
  if (exponent < -4 || exponent >= 6) {
    out += s;
    return;
  }
  auto fixed = std::to_chars(buf.data(), buf.data() + buf.size(), v, std::chars_format::fixed);
  out.append(buf.data(), fixed.ptr);
}

std::string with_go_style_le(const std::string& text) {
  std::string out;
  out.reserve(text.size() + text.size() / 16);
  std::size_t pos = 0;
  while (true) {
    auto hit = text.find("le=\"", pos);
    if (hit == std::string::npos) break;
    auto value_begin = hit + 4;
    auto value_end = text.find('"', value_begin);
    if (value_end == std::string::npos) break;
    out.append(text, pos, value_begin - pos);
    std::string_view value(text.data() + value_begin, value_end - value_begin);
    double bound = 0;
    auto parsed = std::from_chars(value.data(), value.data() + value.size(), bound);
    bool is_label = hit > 0 && (text[hit - 1] == '{' || text[hit - 1] == ',');
    if (is_label && parsed.ec == std::errc() && parsed.ptr == value.data() + value.size())
      append_go_float(out, bound);
    else
      out.append(value);
    pos = value_end;
  }
  out.append(text, pos, std::string::npos);
  return out;
}

}  // namespace regmeter
