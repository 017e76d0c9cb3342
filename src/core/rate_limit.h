// The upstream's rate budget from its response headers. Understood:
//   Docker Hub               RateLimit-Limit: 100;w=21600   RateLimit-Remaining: 76;w=21600
//   IETF draft -00..-06      RateLimit-Limit: 100[, 100;w=3600 ...]  RateLimit-Remaining: 50
//                            RateLimit-Policy: 100;w=3600
//   IETF draft -07           RateLimit: limit=100, remaining=50, reset=30
//   IETF draft -08 and later RateLimit-Policy: "default";q=100;w=3600   RateLimit: "default";r=50;t=30
//   GitHub style             X-RateLimit-Limit: 100   X-RateLimit-Remaining: 50
// Reset times are not returned (X-RateLimit-Reset is a wall-clock time in
// some APIs and seconds in others). A header that does not parse as a whole
// gives nothing. Pure: no I/O, no allocation.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace regmeter {

struct RateLimit {
  std::optional<std::uint64_t> limit;
  std::optional<std::uint64_t> remaining;
  std::optional<std::uint64_t> window_seconds;
};

// Fed the response's header fields one by one (any order; names compared
// case-insensitively; the first occurrence of a field counts). When several
// forms are present, RateLimit-Limit/-Remaining win over RateLimit, which
// wins over RateLimit-Policy, which wins over X-RateLimit-*.
class RateLimitReader {
 public:
  void header(std::string_view name, std::string_view value);
  // Nothing when no rate-limit field parsed.
  std::optional<RateLimit> result() const;

 private:
  // Lower rank wins; each field remembers the rank it came from.
  struct Value {
    std::uint64_t value = 0;
    std::uint8_t rank = kNone;
  };
  static constexpr std::uint8_t kNone = 0xff;
  void offer(Value& field, std::optional<std::uint64_t> value, std::uint8_t rank);

  Value limit_, remaining_, window_;
  std::uint8_t seen_ = 0;  // bit per header name already taken
};

}  // namespace regmeter
