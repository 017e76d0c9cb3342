// ASCII-only text helpers for protocol tokens (header names and values,
// media types, product tokens): no locale, no allocation.
// The one copy: header policy, the admin port and the exposition negotiation
// all use these.
#pragma once

#include <string_view>

namespace regmeter {

constexpr char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

constexpr bool ascii_iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}

constexpr bool ascii_istarts_with(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && ascii_iequals(text.substr(0, prefix.size()), prefix);
}

constexpr bool is_ows(char c) { return c == ' ' || c == '\t'; }

// Without leading and trailing spaces and tabs (HTTP's optional whitespace).
constexpr std::string_view ascii_trim(std::string_view text) {
  while (!text.empty() && is_ows(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_ows(text.back())) text.remove_suffix(1);
  return text;
}

// The value of one hex digit, -1 for anything else. Chunk sizes and
// percent-escapes take either case; digests (OCI's encoded form) and W3C
// trace ids are lowercase by their grammars, so an uppercase digit is invalid
// there.
constexpr int hex_digit_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
constexpr int lower_hex_digit_value(char c) { return c >= 'A' && c <= 'F' ? -1 : hex_digit_value(c); }

}  // namespace regmeter
