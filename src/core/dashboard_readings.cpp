#include "core/dashboard_readings.h"

#include <prometheus/metric_family.h>

#include <map>
#include <string>
#include <string_view>
#include <utility>

#include "core/float_format.h"

namespace regmeter {

namespace {

std::string_view label_of(const prometheus::ClientMetric& metric, std::string_view name) {
  for (const auto& label : metric.label)
    if (label.name == name) return label.value;
  return {};
}

// Sums into (family, label) so each reading names one series once.
class Sums {
 public:
  void add(std::string_view family, std::string label, double value) {
    sums_[{std::string(family), std::move(label)}] += value;
  }
  // Per-bucket counts of one histogram (bucket bounds as `le` is written).
  void add_buckets(std::string_view family, const prometheus::ClientMetric::Histogram& histogram) {
    std::uint64_t below = 0;
    for (const auto& bucket : histogram.bucket) {
      std::string le;
      append_go_float(le, bucket.upper_bound);
      // Cumulative counts never go down across buckets; guard anyway so a
      // malformed histogram cannot make a negative count.
      std::uint64_t in_bucket = bucket.cumulative_count >= below ? bucket.cumulative_count - below : 0;
      below = std::max(below, bucket.cumulative_count);
      add(family, std::move(le), static_cast<double>(in_bucket));
    }
  }
  std::vector<MetricReading> readings() && {
    std::vector<MetricReading> out;
    out.reserve(sums_.size());
    for (auto& [key, value] : sums_) out.push_back({key.first, key.second, value});
    return out;
  }

 private:
  std::map<std::pair<std::string, std::string>, double> sums_;
};

}  // namespace

std::vector<MetricReading> dashboard_readings(const std::vector<prometheus::MetricFamily>& families) {
  Sums sums;
  for (const auto& family : families) {
    if (family.name == "registry_http_request_duration_seconds") {
      for (const auto& m : family.metric) {
        auto method = label_of(m, "method");
        if (label_of(m, "handler") == "blob_upload_chunk" && (method == "patch" || method == "put"))
          sums.add_buckets("upload_latency", m.histogram);
      }
    } else if (family.name == "regmeter_upload_session_duration_seconds") {
      for (const auto& m : family.metric) {
        sums.add_buckets("session_duration", m.histogram);
        sums.add("sessions", std::string(label_of(m, "outcome")), static_cast<double>(m.histogram.sample_count));
      }
    } else if (family.name == "registry_http_requests_total") {
      for (const auto& m : family.metric) {
        std::string handler(label_of(m, "handler"));
        auto code = label_of(m, "code");
        sums.add("requests", handler, m.counter.value);
        if (code.size() == 3 && code[0] == '5') sums.add("errors", handler, m.counter.value);
      }
    } else if (family.name == "regmeter_blob_bytes_total") {
      for (const auto& m : family.metric) sums.add("blob_bytes", std::string(label_of(m, "direction")), m.counter.value);
    }
  }
  return std::move(sums).readings();
}

}  // namespace regmeter
