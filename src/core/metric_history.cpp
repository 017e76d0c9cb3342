#include "core/metric_history.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "core/json.h"

namespace regmeter {

namespace {

constexpr double kNeverRead = std::numeric_limits<double>::quiet_NaN();

void append_interval(std::string& out, const MetricHistory::Interval& interval) {
  out += fmt::format("{{\"start\":{},\"end\":{},\"cells\":[", interval.start_ms, interval.end_ms);
  for (std::size_t i = 0; i < interval.cells.size(); ++i) {
    if (i > 0) out += ',';
    // fmt's shortest round-trip form: "3" for 3.0, exact for counts below 2^53.
    out += fmt::format("[{},{}]", interval.cells[i].column, interval.cells[i].increase);
  }
  out += "]}";
}

}  // namespace

MetricHistory::MetricHistory(std::size_t capacity, std::size_t max_columns)
    : capacity_(capacity), max_columns_(max_columns) {
  if (capacity == 0) throw std::invalid_argument("MetricHistory needs a capacity of at least one interval");
  if (max_columns > std::numeric_limits<std::uint32_t>::max())
    throw std::invalid_argument("MetricHistory: max_columns too large");
}

std::optional<std::uint32_t> MetricHistory::column_of(const MetricReading& reading) {
  auto key = std::make_pair(reading.family, reading.label);
  if (auto it = index_.find(key); it != index_.end()) return it->second;
  if (columns_.size() >= max_columns_) return std::nullopt;
  auto family = std::find(families_.begin(), families_.end(), reading.family);
  if (family == families_.end()) family = families_.insert(families_.end(), reading.family);
  auto column = static_cast<std::uint32_t>(columns_.size());
  columns_.push_back({reading.family, reading.label});
  family_of_.push_back(static_cast<std::uint32_t>(family - families_.begin()));
  last_.push_back(kNeverRead);
  index_.emplace(std::move(key), column);
  return column;
}

std::vector<std::pair<std::uint32_t, double>> MetricHistory::to_columns(const std::vector<MetricReading>& readings) {
  std::vector<std::pair<std::uint32_t, double>> values;
  values.reserve(readings.size());
  for (const auto& reading : readings) {
    if (!std::isfinite(reading.value)) continue;  // counters are finite; never let NaN poison a column
    if (auto column = column_of(reading))
      values.emplace_back(*column, reading.value);
    else
      ++ignored_readings_;
  }
  std::sort(values.begin(), values.end());
  // Sum duplicates: a caller may hand one series in parts.
  std::vector<std::pair<std::uint32_t, double>> summed;
  for (const auto& [column, value] : values) {
    if (!summed.empty() && summed.back().first == column)
      summed.back().second += value;
    else
      summed.emplace_back(column, value);
  }
  return summed;
}

std::vector<MetricHistory::Cell> MetricHistory::increases(
    const std::vector<std::pair<std::uint32_t, double>>& values) const {
  std::vector<bool> reset(families_.size(), false);
  for (const auto& [column, value] : values)
    if (!std::isnan(last_[column]) && value < last_[column]) reset[family_of_[column]] = true;
  std::vector<Cell> cells;
  for (const auto& [column, value] : values) {
    double before = last_[column];
    double increase = reset[family_of_[column]] || std::isnan(before) ? value : value - before;
    if (increase > 0) cells.push_back({column, increase});
  }
  return cells;
}

void MetricHistory::record(std::int64_t t_ms, const std::vector<MetricReading>& readings) {
  auto values = to_columns(readings);
  if (has_baseline_) {
    Interval interval{last_ms_, t_ms, increases(values)};
    interval.cells.shrink_to_fit();
    if (intervals_.size() == capacity_) intervals_.pop_front();
    intervals_.push_back(std::move(interval));
  } else {
    // Series first read now are part of the baseline, not new growth.
    has_baseline_ = true;
  }
  for (const auto& [column, value] : values) last_[column] = value;
  last_ms_ = t_ms;
}

std::optional<MetricHistory::Interval> MetricHistory::peek(std::int64_t t_ms,
                                                           const std::vector<MetricReading>& readings) {
  if (!has_baseline_) return std::nullopt;
  auto values = to_columns(readings);
  return Interval{last_ms_, t_ms, increases(values)};
}

std::size_t MetricHistory::interval_bytes() const {
  std::size_t bytes = 0;
  for (const auto& interval : intervals_) bytes += sizeof(Interval) + interval.cells.capacity() * sizeof(Cell);
  return bytes;
}

std::size_t MetricHistory::worst_case_bytes(std::size_t capacity, std::size_t max_columns) {
  return capacity * (sizeof(Interval) + max_columns * sizeof(Cell));
}

std::string MetricHistory::to_json(double interval_seconds, const std::optional<Interval>& partial) const {
  std::string out;
  out.reserve(256 + columns_.size() * 48 + intervals_.size() * 64);
  out += fmt::format("{{\"interval_seconds\":{},\"capacity\":{},\"max_columns\":{},\"ignored_readings\":{},\"columns\":[",
                     interval_seconds, capacity_, max_columns_, ignored_readings_);
  for (std::size_t i = 0; i < columns_.size(); ++i) {
    if (i > 0) out += ',';
    out += "{\"family\":";
    append_json_string(out, columns_[i].family);
    out += ",\"label\":";
    append_json_string(out, columns_[i].label);
    out += '}';
  }
  out += "],\"intervals\":[";
  bool first = true;
  for (const auto& interval : intervals_) {
    if (!first) out += ',';
    first = false;
    append_interval(out, interval);
  }
  out += "],\"partial\":";
  if (partial)
    append_interval(out, *partial);
  else
    out += "null";
  out += '}';
  return out;
}

}  // namespace regmeter
