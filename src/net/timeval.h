// Seconds (the unit of every timeout flag) as the timeval libevent's timers
// take. One conversion, so fractional flags (--shutdown-grace 0.5) keep
// their fraction everywhere.
#pragma once

#include <sys/time.h>

#include <cmath>

namespace regmeter {

inline timeval seconds_to_timeval(double seconds) {
  if (!(seconds > 0)) return timeval{0, 0};  // also NaN
  double whole = std::floor(seconds);
  auto micros = static_cast<suseconds_t>((seconds - whole) * 1e6);
  if (micros >= 1000000) micros = 999999;
  return timeval{static_cast<time_t>(whole), micros};
}

}  // namespace regmeter
