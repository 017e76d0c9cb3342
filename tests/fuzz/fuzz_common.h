// Shared helpers for the libFuzzer targets in tests/fuzz/ (see run_fuzz.sh).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

// A failed invariant: print it and abort, which libFuzzer reports as a crash
// and saves the input for.
#define FUZZ_CHECK(cond, ...)                                                          \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      std::fprintf(stderr, "\ninvariant failed at %s:%d: %s\n  ", __FILE__, __LINE__, \
                   #cond);                                                             \
      std::fprintf(stderr, __VA_ARGS__);                                               \
      std::fprintf(stderr, "\n");                                                      \
      std::abort();                                                                    \
    }                                                                                  \
  } while (0)

namespace fuzz {

// Deterministic pseudo-random numbers from the input itself (FNV-1a seed,
// then xorshift), so that slicing decisions depend on every input byte
// without taking bytes away from the message under test: the seed corpus
// stays real HTTP.
class Rng {
 public:
  explicit Rng(std::string_view data) {
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char c : data) h = (h ^ c) * 1099511628211ull;
    state_ = h | 1;
  }
  std::uint64_t next() {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 7;
    state_ ^= state_ << 17;
    return state_;
  }
  // 1..max, biased towards small slices (where state machines break).
  std::size_t slice(std::size_t max) {
    if (max <= 1) return max;
    std::uint64_t r = next();
    std::size_t cap;
    switch (r & 3) {
      case 0: cap = 1; break;
      case 1: cap = 8; break;
      case 2: cap = 64; break;
      default: cap = max; break;
    }
    if (cap > max) cap = max;
    return 1 + static_cast<std::size_t>((r >> 2) % cap);
  }

 private:
  std::uint64_t state_;
};

inline std::string shown(std::string_view bytes, std::size_t limit = 400) {
  std::string out;
  for (unsigned char c : bytes.substr(0, limit)) {
    if (c == '\r') out += "\\r";
    else if (c == '\n') out += "\\n";
    else if (c < 32 || c >= 127) {
      static const char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else out += static_cast<char>(c);
  }
  if (bytes.size() > limit) out += "...";
  return out;
}

}  // namespace fuzz
