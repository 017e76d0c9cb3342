#include "core/rate_limit.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <utility>
#include <vector>

namespace regmeter {
namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

std::optional<RateLimit> read(const Headers& headers) {
  RateLimitReader reader;
  for (const auto& [name, value] : headers) reader.header(name, value);
  return reader.result();
}

struct Case {
  std::string name;
  Headers headers;
  std::optional<std::uint64_t> limit, remaining, window;
  bool nothing = false;
};

TEST(RateLimitReader, Forms) {
  const std::vector<Case> cases = {
      {"docker hub", {{"RateLimit-Limit", "100;w=21600"}, {"RateLimit-Remaining", "76;w=21600"}}, 100, 76, 21600},
      {"docker hub, other case and spaces",
       {{"ratelimit-limit", " 100 ; w=21600 "}, {"RATELIMIT-REMAINING", "76;w=21600"}}, 100, 76, 21600},
      {"docker hub with its source header",
       {{"RateLimit-Limit", "100;w=21600"}, {"RateLimit-Remaining", "0;w=21600"},
        {"docker-ratelimit-source", "203.0.113.9"}}, 100, 0, 21600},
      {"draft plain numbers", {{"RateLimit-Limit", "100"}, {"RateLimit-Remaining", "50"}, {"RateLimit-Reset", "30"}},
       100, 50, std::nullopt},
      {"draft-03 quota policies", {{"RateLimit-Limit", "10, 10;w=1, 1000;w=3600"}, {"RateLimit-Remaining", "9"}}, 10, 9,
       1},
      {"draft-03 policy with a comment", {{"RateLimit-Limit", "10, 10;w=1;comment=\"sliding window\""}}, 10,
       std::nullopt, 1},
      {"draft-06 policy header", {{"RateLimit-Limit", "100"}, {"RateLimit-Policy", "100;w=3600"}}, 100, std::nullopt,
       3600},
      {"policy alone", {{"RateLimit-Policy", "100;w=3600"}}, 100, std::nullopt, 3600},
      {"draft-07 dictionary", {{"RateLimit", "limit=100, remaining=50, reset=30"}}, 100, 50, std::nullopt},
      {"draft-07 with policy", {{"RateLimit", "limit=100, remaining=50, reset=30"}, {"RateLimit-Policy", "100;w=60"}},
       100, 50, 60},
      {"draft-08 named policies",
       {{"RateLimit-Policy", "\"default\";q=100;w=3600"}, {"RateLimit", "\"default\";r=50;t=30"}}, 100, 50, 3600},
      {"github style", {{"X-RateLimit-Limit", "5000"}, {"X-RateLimit-Remaining", "4987"}, {"X-RateLimit-Reset", "1372700873"}},
       5000, 4987, std::nullopt},
      {"RateLimit-Limit wins over the others, coming last",
       {{"X-RateLimit-Limit", "1"}, {"RateLimit-Policy", "2;w=9"}, {"RateLimit", "limit=3"}, {"RateLimit-Limit", "4"}},
       4, std::nullopt, 9},
      {"RateLimit-Limit wins over the others, coming first",
       {{"RateLimit-Limit", "4"}, {"RateLimit", "limit=3"}, {"RateLimit-Policy", "2;w=9"}, {"X-RateLimit-Limit", "1"}},
       4, std::nullopt, 9},
      {"then RateLimit, then the policy, then X-RateLimit",
       {{"X-RateLimit-Limit", "1"}, {"X-RateLimit-Remaining", "1"}, {"RateLimit-Policy", "2;w=9"},
        {"RateLimit", "remaining=3"}},
       2, 3, 9},
      {"the first occurrence counts", {{"RateLimit-Limit", "100;w=60"}, {"RateLimit-Limit", "5;w=1"}}, 100,
       std::nullopt, 60},
      {"remaining alone", {{"RateLimit-Remaining", "3"}}, std::nullopt, 3, std::nullopt},
      {"zero", {{"RateLimit-Limit", "0"}}, 0, std::nullopt, std::nullopt},
      {"no headers", {}, std::nullopt, std::nullopt, std::nullopt, true},
      {"other headers", {{"Content-Type", "application/json"}, {"Retry-After", "30"}}, std::nullopt, std::nullopt,
       std::nullopt, true},
      {"reset alone says nothing", {{"RateLimit-Reset", "30"}}, std::nullopt, std::nullopt, std::nullopt, true},
      {"window alone says nothing", {{"RateLimit", "reset=30"}}, std::nullopt, std::nullopt, std::nullopt, true},
  };
  for (const auto& c : cases) {
    auto got = read(c.headers);
    if (c.nothing) {
      EXPECT_FALSE(got) << c.name;
      continue;
    }
    ASSERT_TRUE(got) << c.name;
    EXPECT_EQ(got->limit, c.limit) << c.name;
    EXPECT_EQ(got->remaining, c.remaining) << c.name;
    EXPECT_EQ(got->window_seconds, c.window) << c.name;
  }
}

TEST(RateLimitReader, GarbageGivesNothing) {
  for (std::string_view value :
       {"", " ", "abc", "-5", "+5", "5.5", "1e3", "100;w=abc", "100;w=", "100;w=-1", "100;w=\"60\"", "100,", ",100",
        "100 200", "100;;w=1", "100;W=60", "\"100\"", "1000000000000000000000", "100, abc", "0x10", "100;w=60, x",
        "limit=100", "\x01"}) {
    RateLimitReader limit;
    limit.header("RateLimit-Limit", value);
    EXPECT_FALSE(limit.result()) << "RateLimit-Limit: " << value;
    RateLimitReader remaining;
    remaining.header("RateLimit-Remaining", value);
    EXPECT_FALSE(remaining.result()) << "RateLimit-Remaining: " << value;
    RateLimitReader x;
    x.header("X-RateLimit-Limit", value);
    EXPECT_FALSE(x.result()) << "X-RateLimit-Limit: " << value;
  }
  for (std::string_view value : {"limit=abc", "limit=100,", "limit=\"100\"", "=100", "Limit=100", "limit=-1",
                                 "\"default\";r=abc", "\"default\"", "\"default;r=5", "limit=1 remaining=2"}) {
    RateLimitReader reader;
    reader.header("RateLimit", value);
    EXPECT_FALSE(reader.result()) << "RateLimit: " << value;
  }
  for (std::string_view value : {"abc;w=5", "\"default\";w=60", "\"default\";q=x", "100;w=1.5"}) {
    RateLimitReader reader;
    reader.header("RateLimit-Policy", value);
    EXPECT_FALSE(reader.result()) << "RateLimit-Policy: " << value;
  }
  // A bad header does not spoil a good one.
  auto mixed = read({{"RateLimit-Limit", "garbage"}, {"RateLimit-Remaining", "7;w=60"}});
  ASSERT_TRUE(mixed);
  EXPECT_FALSE(mixed->limit);
  EXPECT_EQ(mixed->remaining, 7u);
}

TEST(RateLimitReader, RandomValuesNeverCrashAndStayNumbers) {
  std::mt19937_64 random(16);
  const std::string alphabet = "0123456789;=,\" wqrtlimitx-.\\";
  for (int round = 0; round < 50000; ++round) {
    std::string value(random() % 30, ' ');
    for (char& c : value) c = round % 3 ? alphabet[random() % alphabet.size()] : static_cast<char>(random() & 0xff);
    RateLimitReader reader;
    for (std::string_view name : {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit", "RateLimit-Policy",
                                  "X-RateLimit-Limit", "X-RateLimit-Remaining"})
      reader.header(name, value);
    if (auto r = reader.result()) {
      ASSERT_TRUE(r->limit || r->remaining);
      if (r->limit) {
        ASSERT_LT(*r->limit, 1000000000000000ull);
      }
    }
  }
}

}  // namespace
}  // namespace regmeter
