#include "core/exemplar.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace regmeter {
namespace {

std::string hex(RequestId id) {
  auto h = to_hex(id);
  return std::string(h.data(), h.size());
}

std::string hex(const TraceId& id) {
  auto h = to_hex(id);
  return std::string(h.data(), h.size());
}

TEST(Exemplar, IsAFixedSizeRecord) {
  static_assert(sizeof(Exemplar) == 48);
  static_assert(std::is_trivially_copyable_v<Exemplar>);
  Exemplar slot;
  EXPECT_TRUE(slot.empty());
  slot = Exemplar{RequestId{1, 2}, TraceId{}, 0.25, 1712345678'123000000};
  EXPECT_FALSE(slot.empty());
}

TEST(RequestId, FormatsAs32LowercaseHexDigits) {
  EXPECT_EQ(hex(RequestId{0x0123456789abcdef, 0x0001000000000002}), "0123456789abcdef0001000000000002");
  EXPECT_EQ(hex(RequestId{0xffffffffffffffff, 0}), "ffffffffffffffff0000000000000000");
}

TEST(RequestId, GeneratorCarriesPrefixThreadAndSequence) {
  RequestIdGenerator g(0xfeedfacecafebeef, 3);
  EXPECT_EQ(hex(g.next()), "feedfacecafebeef0003000000000001");
  EXPECT_EQ(hex(g.next()), "feedfacecafebeef0003000000000002");
}

TEST(RequestId, UniqueAcrossThreadsOfOneProcess) {
  std::uint64_t prefix = random_request_id_prefix();
  constexpr int kThreads = 4;
  constexpr int kIds = 50000;
  std::vector<std::vector<RequestId>> ids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      RequestIdGenerator g(prefix, static_cast<std::uint16_t>(t));
      for (int i = 0; i < kIds; ++i) ids[static_cast<std::size_t>(t)].push_back(g.next());
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> seen;
  for (const auto& list : ids)
    for (const auto& id : list) seen.insert(hex(id));
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kThreads * kIds));
}

TEST(RequestId, PrefixIsRandomAndNonZero) {
  std::uint64_t a = random_request_id_prefix();
  std::uint64_t b = random_request_id_prefix();
  EXPECT_NE(a, 0u);
  EXPECT_NE(a, b);  // 2^-64 chance of a false failure
}

constexpr std::string_view kSpecExample = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

TEST(Traceparent, ParsesTheTraceId) {
  auto id = parse_traceparent(kSpecExample);
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(hex(*id), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(id->bytes[0], 0x4b);
  EXPECT_EQ(id->bytes[15], 0x36);
  EXPECT_FALSE(id->empty());
  // Flags do not matter (not sampled is still a trace).
  EXPECT_TRUE(parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").has_value());
  // Optional whitespace around a header value.
  EXPECT_TRUE(parse_traceparent(" \t00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ").has_value());
}

TEST(Traceparent, LaterVersionsMayCarryMoreFields) {
  EXPECT_TRUE(parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").has_value());
  EXPECT_TRUE(parse_traceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-brings")
                  .has_value());
  // ... but only after a dash.
  EXPECT_FALSE(parse_traceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x").has_value());
  // Version 00 is exactly 55 characters.
  EXPECT_FALSE(parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra").has_value());
}

TEST(Traceparent, RejectsMalformedHeaders) {
  const char* bad[] = {
      "",
      "00",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",          // no flags
      "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",         // trace id one digit short
      "00-4bf92f3577b34da6a3ce929d0e0e47366-00f067aa0ba902b7-01",       // one digit long
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",        // version ff is invalid
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",        // all-zero trace id
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",        // all-zero parent id
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",        // uppercase
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",        // uppercase parent
      "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",        // bad hex in version
      "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",        // bad hex in trace id
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01",        // bad hex in parent id
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",        // bad hex in flags
      "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",        // wrong separator
      "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 trailing",
  };
  for (const char* header : bad) EXPECT_FALSE(parse_traceparent(header).has_value()) << header;
  std::string with_nul(kSpecExample);
  with_nul[10] = '\0';
  EXPECT_FALSE(parse_traceparent(with_nul).has_value());
}

TEST(ExemplarLabels, FitTheOpenMetricsLimitWithBothIds) {
  std::size_t chars = kRequestIdLabel.size() + kRequestIdChars + kTraceIdLabel.size() + kTraceIdChars;
  EXPECT_EQ(chars, 82u);
  EXPECT_LE(chars, kMaxExemplarLabelChars);
}

}  // namespace
}  // namespace regmeter
