// The dashboard's memory: the last `capacity` sampling intervals as
// per-interval increases of a few counters, so a /dashboard page opened at
// any moment draws the recent past at once instead of starting empty.
//
// Pure: the app layer reads cumulative counter values on a timer
// (core/dashboard_readings.h) and hands them to record(). Memory is bounded
// by construction: at most `capacity` intervals, at most `max_columns`
// distinct (family, label) series, and an interval stores only the series
// that grew in it (a Cell of 16 bytes each).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace regmeter {

// One counter's cumulative value at sampling time.
struct MetricReading {
  std::string family;  // a dashboard family, e.g. "upload_latency"
  std::string label;   // the series within it: a bucket bound, a handler, ...
  double value = 0;
};

class MetricHistory {
 public:
  struct Cell {
    std::uint32_t column = 0;  // index into columns()
    double increase = 0;       // > 0
  };
  struct Interval {
    std::int64_t start_ms = 0;  // the previous sample (Unix ms)
    std::int64_t end_ms = 0;    // this sample
    std::vector<Cell> cells;    // only the series that grew, by ascending column
  };
  struct Column {
    std::string family;
    std::string label;
  };

  // capacity: intervals kept (the oldest is dropped first), at least 1.
  // max_columns: distinct series tracked; readings of later ones are
  // ignored and counted in ignored_readings().
  MetricHistory(std::size_t capacity, std::size_t max_columns);

  // Cumulative readings taken at t_ms. The first call only sets the
  // baseline; each later one appends the interval since the previous call.
  // A counter reset is judged per family, as Prometheus judges a histogram:
  // if any series of a family reads lower than before, the family restarted
  // from zero and each of its series' increase is its whole current value.
  // A series seen for the first time after the baseline counts from zero
  // (series appear when first observed). A series missing from `readings`
  // grew by nothing.
  void record(std::int64_t t_ms, const std::vector<MetricReading>& readings);

  // The interval from the last record() to these readings, without storing
  // it: the part of the current interval that has already elapsed. It may
  // add columns for new series (they still count from zero at the next
  // record()). nullopt before the baseline.
  std::optional<Interval> peek(std::int64_t t_ms, const std::vector<MetricReading>& readings);

  const std::deque<Interval>& intervals() const { return intervals_; }
  const std::vector<Column>& columns() const { return columns_; }
  std::size_t capacity() const { return capacity_; }
  std::size_t max_columns() const { return max_columns_; }
  std::uint64_t ignored_readings() const { return ignored_readings_; }
  bool has_baseline() const { return has_baseline_; }

  // Heap bytes held by the stored intervals (allocated capacity, not size).
  std::size_t interval_bytes() const;
  // The most interval_bytes() can reach: every tracked series growing in
  // every kept interval.
  static std::size_t worst_case_bytes(std::size_t capacity, std::size_t max_columns);

  // {"interval_seconds":…,"capacity":…,"max_columns":…,"ignored_readings":…,
  //  "columns":[{"family":…,"label":…},…],
  //  "intervals":[{"start":ms,"end":ms,"cells":[[column,increase],…]},…],
  //  "partial":{…same as an interval…} or null}
  std::string to_json(double interval_seconds, const std::optional<Interval>& partial) const;

 private:
  // Column index of (family, label), added if there is room; nullopt when full.
  std::optional<std::uint32_t> column_of(const MetricReading& reading);
  // The readings as (column, value), duplicates summed, by ascending column.
  std::vector<std::pair<std::uint32_t, double>> to_columns(const std::vector<MetricReading>& readings);
  // Increases since last_ of these (column, value) readings.
  std::vector<Cell> increases(const std::vector<std::pair<std::uint32_t, double>>& values) const;

  std::size_t capacity_;
  std::size_t max_columns_;
  std::vector<Column> columns_;
  std::vector<std::uint32_t> family_of_;  // column -> family index
  std::vector<std::string> families_;
  std::map<std::pair<std::string, std::string>, std::uint32_t> index_;
  std::vector<double> last_;  // column -> value at the last record(); NaN: never read
  std::int64_t last_ms_ = 0;
  bool has_baseline_ = false;
  std::uint64_t ignored_readings_ = 0;
  std::deque<Interval> intervals_;
};

}  // namespace regmeter
