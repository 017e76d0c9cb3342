#include "core/exemplar.h"

#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>

#include "core/ascii.h"

namespace regmeter {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

// Two hex digits per byte value: ids are formatted at every scrape, 26 per
// histogram series with exemplars on its buckets.
constexpr auto kHexPairs = [] {
  std::array<char, 512> out{};
  for (std::size_t b = 0; b < 256; ++b) {
    out[2 * b] = kHexDigits[b >> 4];
    out[2 * b + 1] = kHexDigits[b & 0xf];
  }
  return out;
}();

void put_hex_byte(std::uint8_t byte, char* out) {
  out[0] = kHexPairs[2 * std::size_t{byte}];
  out[1] = kHexPairs[2 * std::size_t{byte} + 1];
}

void put_hex(std::uint64_t value, char* out) {
  for (int i = 7; i >= 0; --i) {
    put_hex_byte(static_cast<std::uint8_t>(value), out + 2 * i);
    value >>= 8;
  }
}

// Decodes 2 * out.size() lowercase hex digits; false on any other character.
template <std::size_t N>
bool decode_hex(std::string_view text, std::array<std::uint8_t, N>& out) {
  for (std::size_t i = 0; i < N; ++i) {
    int high = lower_hex_digit_value(text[2 * i]);
    int low = lower_hex_digit_value(text[2 * i + 1]);
    if (high < 0 || low < 0) return false;
    out[i] = static_cast<std::uint8_t>(high << 4 | low);
  }
  return true;
}

template <std::size_t N>
bool all_zero(const std::array<std::uint8_t, N>& bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](std::uint8_t b) { return b == 0; });
}

}  // namespace

std::array<char, kRequestIdChars> to_hex(RequestId id) {
  std::array<char, kRequestIdChars> out{};
  put_hex(id.prefix, out.data());
  put_hex(id.thread_and_sequence, out.data() + 16);
  return out;
}

std::uint64_t random_request_id_prefix() {
  std::uint64_t prefix = 0;
  while (prefix == 0) {
    ssize_t got = getrandom(&prefix, sizeof prefix, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got != static_cast<ssize_t>(sizeof prefix)) throw std::runtime_error("getrandom failed: no request id prefix");
  }
  return prefix;
}

bool TraceId::empty() const { return all_zero(bytes); }

std::array<char, kTraceIdChars> to_hex(const TraceId& id) {
  std::array<char, kTraceIdChars> out{};
  for (std::size_t i = 0; i < id.bytes.size(); ++i) put_hex_byte(id.bytes[i], out.data() + 2 * i);
  return out;
}

std::optional<TraceId> parse_traceparent(std::string_view header) {
  // 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
  // 0  3                                36               53
  constexpr std::size_t kVersion00Length = 55;
  std::string_view s = ascii_trim(header);
  if (s.size() < kVersion00Length) return std::nullopt;
  if (s[2] != '-' || s[35] != '-' || s[52] != '-') return std::nullopt;
  std::array<std::uint8_t, 1> version{};
  std::array<std::uint8_t, 16> trace{};
  std::array<std::uint8_t, 8> parent{};
  std::array<std::uint8_t, 1> flags{};
  if (!decode_hex(s.substr(0, 2), version) || !decode_hex(s.substr(3, 32), trace) ||
      !decode_hex(s.substr(36, 16), parent) || !decode_hex(s.substr(53, 2), flags))
    return std::nullopt;
  if (version[0] == 0xff) return std::nullopt;
  if (version[0] == 0x00 && s.size() != kVersion00Length) return std::nullopt;
  if (s.size() > kVersion00Length && s[kVersion00Length] != '-') return std::nullopt;
  if (all_zero(trace) || all_zero(parent)) return std::nullopt;
  return TraceId{trace};
}

}  // namespace regmeter
