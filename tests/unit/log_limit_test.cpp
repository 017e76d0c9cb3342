// RepeatLimiter: the first occurrence of a line is written, repeats within
// the interval are counted and reported once per interval, with the next
// occurrence or by take_summaries; different lines are independent; a full
// table counts the rest without losing them; threads lose no count.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "core/log_limit.h"

namespace regmeter {
namespace {

constexpr std::int64_t kSecond = 1'000'000'000;
constexpr std::int64_t kInterval = 10 * kSecond;

// The N of "(repeated N time(s) in the last S s)", 0 when the line carries no
// count. (No std::regex: GCC 12 warns inside it in the sanitizer build.)
std::uint64_t repeats_in(const std::string& line) {
  auto at = line.rfind(" (repeated ");
  if (at == std::string::npos || line.back() != ')') return 0;
  return std::stoull(line.substr(at + 11));
}

TEST(RepeatLimiter, FirstIsWrittenRepeatsAreCountedThenSummarisedWithTheNextOne) {
  RepeatLimiter limiter(kInterval);
  const std::string text = "upstream 127.0.0.1:5000: connect: Connection refused";
  EXPECT_EQ(limiter.admit(text, 100 * kSecond), text);
  for (int i = 1; i <= 57; ++i) EXPECT_EQ(limiter.admit(text, 100 * kSecond + i * (kSecond / 10)), "") << i;
  // Just before the interval is over: still counted.
  EXPECT_EQ(limiter.admit(text, 110 * kSecond - 1), "");
  EXPECT_EQ(limiter.admit(text, 110 * kSecond), text + " (repeated 58 times in the last 10 s)");
  // A new interval starts with that line.
  EXPECT_EQ(limiter.admit(text, 111 * kSecond), "");
  EXPECT_EQ(limiter.admit(text, 125 * kSecond), text + " (repeated 1 time in the last 15 s)");
}

TEST(RepeatLimiter, QuietLineIsWrittenAgainWithoutACount) {
  RepeatLimiter limiter(kInterval);
  EXPECT_EQ(limiter.admit("a", 0), "a");
  EXPECT_EQ(limiter.admit("a", 30 * kSecond), "a");
  EXPECT_TRUE(limiter.take_summaries(100 * kSecond).empty());
}

TEST(RepeatLimiter, DifferentLinesAreIndependent) {
  RepeatLimiter limiter(kInterval);
  EXPECT_EQ(limiter.admit("refused", 0), "refused");
  EXPECT_EQ(limiter.admit("timed out", 1), "timed out");
  EXPECT_EQ(limiter.admit("refused", 2), "");
  EXPECT_EQ(limiter.admit("timed out", 3), "");
  EXPECT_EQ(limiter.admit("timed out", 4), "");
  auto summaries = limiter.take_summaries(kInterval + 10);
  ASSERT_EQ(summaries.size(), 2u);
  std::sort(summaries.begin(), summaries.end());
  EXPECT_EQ(summaries[0], "refused (repeated 1 time in the last 10 s)");
  EXPECT_EQ(summaries[1], "timed out (repeated 2 times in the last 10 s)");
}

TEST(RepeatLimiter, SummariesOnlyAfterAnIntervalAndOnlyOnce) {
  RepeatLimiter limiter(kInterval);
  limiter.admit("x", 0);
  limiter.admit("x", kSecond);
  limiter.admit("x", 2 * kSecond);
  EXPECT_TRUE(limiter.take_summaries(5 * kSecond).empty()) << "the interval is not over";
  auto summaries = limiter.take_summaries(12 * kSecond);
  ASSERT_EQ(summaries.size(), 1u);
  EXPECT_EQ(summaries[0], "x (repeated 2 times in the last 12 s)");
  EXPECT_TRUE(limiter.take_summaries(40 * kSecond).empty()) << "reported already";
  EXPECT_TRUE(limiter.take_summaries(40 * kSecond, true).empty()) << "reported already, even at exit";
  // The summary started a new interval: the next one is counted, not written.
  EXPECT_EQ(limiter.admit("x", 13 * kSecond), "");
  EXPECT_EQ(limiter.admit("x", 22 * kSecond), "x (repeated 1 time in the last 10 s)");
}

TEST(RepeatLimiter, AtExitEveryCountIsWritten) {
  RepeatLimiter limiter(kInterval);
  limiter.admit("x", 0);
  limiter.admit("x", kSecond);
  EXPECT_TRUE(limiter.take_summaries(3 * kSecond).empty());
  auto summaries = limiter.take_summaries(3 * kSecond, true);
  ASSERT_EQ(summaries.size(), 1u);
  EXPECT_EQ(summaries[0], "x (repeated 1 time in the last 3 s)");
}

TEST(RepeatLimiter, FullTableCountsTheRestWithoutLosingThem) {
  RepeatLimiter limiter(kInterval);
  for (std::size_t i = 0; i < RepeatLimiter::kSlots; ++i) {
    auto text = fmt::format("line {}", i);
    EXPECT_EQ(limiter.admit(text, 0), text);
    EXPECT_EQ(limiter.admit(text, 1), "");  // active: its slot cannot be taken
  }
  EXPECT_EQ(limiter.admit("one too many", 2), "");
  EXPECT_EQ(limiter.admit("and another", 3), "");
  auto summaries = limiter.take_summaries(kInterval + 3);
  ASSERT_EQ(summaries.size(), RepeatLimiter::kSlots + 1);
  EXPECT_EQ(summaries.back(),
            fmt::format("2 more log lines not written in the last 10 s (over {} different lines were repeating at once)",
                        RepeatLimiter::kSlots));
  // Quiet slots are reused by new lines.
  EXPECT_EQ(limiter.admit("new line", 3 * kInterval), "new line");
}

TEST(RepeatLimiter, ThreadsLoseNoCount) {
  RepeatLimiter limiter(kInterval);
  constexpr int kThreads = 4;
  constexpr int kEach = 20000;
  std::vector<std::vector<std::string>> written(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        // The clock advances with the calls: several intervals pass.
        std::int64_t now = static_cast<std::int64_t>(i) * (kSecond / 200);
        std::string line = limiter.admit(i % 3 == 0 ? "a" : "b", now);
        if (!line.empty()) written[t].push_back(std::move(line));
      }
    });
  for (auto& thread : threads) thread.join();
  std::uint64_t accounted = 0;
  std::size_t lines = 0;
  for (const auto& list : written)
    for (const auto& line : list) {
      accounted += 1 + repeats_in(line);
      ++lines;
    }
  for (const auto& line : limiter.take_summaries(1000 * kSecond)) {
    accounted += repeats_in(line);
    ++lines;
  }
  EXPECT_EQ(accounted, static_cast<std::uint64_t>(kThreads) * kEach);
  // 100 s of calls, two lines: about one line each per 10 s, not one per call.
  EXPECT_LE(lines, 40u);
}

}  // namespace
}  // namespace regmeter
