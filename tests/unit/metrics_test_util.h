// Helpers shared by the unit tests that record requests into the metrics and
// read the rendered exposition back, line by line.
#pragma once

#include <chrono>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "core/metrics.h"

namespace regmeter::testing {

// A request the upstream answered, `duration` long, an hour into the
// steady clock; tests set whatever else they look at.
inline Exchange answered_exchange(Handler handler, Method method, int status,
                                  std::chrono::nanoseconds duration = std::chrono::milliseconds(1)) {
  Exchange e;
  e.handler = handler;
  e.method = method;
  e.status = status;
  e.started = Clock::time_point{} + std::chrono::hours(1);
  e.finished = e.started + duration;
  e.reached_upstream = true;
  return e;
}

// What the data path does for one request: started, then finished.
inline void record(MetricsShard& shard, const Exchange& e) {
  shard.request_started(e.handler);
  shard.request_finished(e);
}

inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The lines that start with `prefix`, in order.
inline std::vector<std::string> lines_starting(const std::string& text, const std::string& prefix) {
  std::vector<std::string> out;
  for (const auto& l : lines_of(text))
    if (l.rfind(prefix, 0) == 0) out.push_back(l);
  return out;
}

inline bool has_line(const std::string& text, const std::string& line) {
  for (const auto& l : lines_of(text))
    if (l == line) return true;
  return false;
}

}  // namespace regmeter::testing

#define EXPECT_LINE(text, line) \
  EXPECT_TRUE(::regmeter::testing::has_line(text, line)) << "missing: " << (line) << "\nin:\n" << (text)
