// Per-request numbers, recorded into per-thread shards and merged on scrape.
//
// Recording is plain integer arithmetic under the shard's own mutex, which
// only its worker thread and a scrape ever take. A scrape merges every shard
// into one Snapshot, turns it into prometheus-cpp MetricFamily values and lets
// prometheus::TextSerializer write the exposition.
//
// Adding a family: a member in Snapshot, a line in Snapshot::record (or a new
// recording method on MetricsShard), one in Snapshot::add, and its rendering
// in Snapshot::families.
#include "regmeter/metrics.h"

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <utility>

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace regmeter {
namespace {

// docker/go-metrics' defaults, used by distribution for every route.
constexpr std::array<std::int64_t, 13> kDurationBoundsNs = {
    5'000'000,     10'000'000,     25'000'000,     50'000'000,    100'000'000,
    250'000'000,   500'000'000,    1'000'000'000,  2'500'000'000, 5'000'000'000,
    10'000'000'000, 25'000'000'000, 60'000'000'000,
};
constexpr std::size_t kSizeBoundCount = 22;  // 1024 * 2^k, k = 0..21
constexpr std::size_t kSeriesPerHandler = kMethodCount;
constexpr std::size_t kHandlerMethodCount = kHandlerCount * kMethodCount;

// A classic histogram with integer observations (nanoseconds, bytes), so sums
// are exact. Counts are per bucket, not cumulative; the last one is +Inf.
template <std::size_t N>
struct Buckets {
  std::array<std::uint64_t, N + 1> counts{};
  std::uint64_t sum = 0;

  void observe(std::size_t bucket, std::uint64_t value) {
    ++counts[bucket];
    sum += value;
  }
  void add(const Buckets& other) {
    for (std::size_t i = 0; i < counts.size(); ++i) counts[i] += other.counts[i];
    sum += other.sum;
  }
  std::uint64_t count() const {
    std::uint64_t total = 0;
    for (auto c : counts) total += c;
    return total;
  }
};
using DurationBuckets = Buckets<kDurationBoundsNs.size()>;
using SizeBuckets = Buckets<kSizeBoundCount>;

// Most requests are fast, so a linear scan usually stops at the first bound.
std::size_t duration_bucket(std::int64_t ns) {
  std::size_t i = 0;
  while (i < kDurationBoundsNs.size() && ns > kDurationBoundsNs[i]) ++i;
  return i;
}

// Smallest k with bytes <= 1024 << k: bytes <= 2^n exactly when
// bit_width(bytes - 1) <= n.
std::size_t size_bucket(std::uint64_t bytes) {
  if (bytes <= 1024) return 0;
  return std::min<std::size_t>(std::bit_width(bytes - 1) - 10, kSizeBoundCount);
}

std::size_t series_index(Handler handler, Method method) {
  return static_cast<std::size_t>(handler) * kSeriesPerHandler + static_cast<std::size_t>(method);
}

// The `code` label. Anything that is not a status line the client received
// (0, or garbage a caller should never pass) is "the client went away".
int code_of(int status) { return status >= 100 && status <= 999 ? status : kClientClosedStatus; }

// registry_http_requests_total: one row of per-(handler, method) counters per
// status code seen. The code -> row table keeps the hot path to two loads;
// a row is allocated the first time a code shows up in a shard.
class CodeCounters {
 public:
  struct Row {
    int code = 0;
    std::array<std::uint64_t, kHandlerMethodCount> counts{};
  };

  void add(int code, std::size_t series, std::uint64_t n) {
    auto& slot = slot_of_code_[static_cast<std::size_t>(code)];
    if (slot == 0) {
      rows_.push_back(Row{code, {}});
      slot = static_cast<std::uint16_t>(rows_.size());
    }
    rows_[slot - 1].counts[series] += n;
  }
  void add(const CodeCounters& other) {
    for (const auto& row : other.rows_)
      for (std::size_t s = 0; s < row.counts.size(); ++s)
        if (row.counts[s] != 0) add(row.code, s, row.counts[s]);
  }
  const std::vector<Row>& rows() const { return rows_; }

 private:
  std::array<std::uint16_t, 1000> slot_of_code_{};  // row index + 1; 0 = none yet
  std::vector<Row> rows_;
};

using Label = prometheus::ClientMetric::Label;

Label label(std::string_view name, std::string_view value) {
  return Label{std::string(name), std::string(value)};
}

template <std::size_t N>
prometheus::ClientMetric histogram_metric(std::vector<Label> labels, const Buckets<N>& buckets,
                                          const std::array<double, N>& upper_bounds, double unit) {
  prometheus::ClientMetric metric;
  metric.label = std::move(labels);
  auto& h = metric.histogram;
  h.bucket.reserve(N + 1);
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < N; ++i) {
    cumulative += buckets.counts[i];
    h.bucket.push_back({cumulative, upper_bounds[i]});
  }
  cumulative += buckets.counts[N];
  h.bucket.push_back({cumulative, std::numeric_limits<double>::infinity()});
  h.sample_count = cumulative;
  h.sample_sum = static_cast<double>(buckets.sum) / unit;
  return metric;
}

// Division of two exact integers rounds to the same double as the decimal
// literal (0.005 etc.), so the `le` values print exactly as distribution's.
constexpr double kNsPerSecond = 1e9;
const std::array<double, kDurationBoundsNs.size()> kDurationBoundsSeconds = [] {
  std::array<double, kDurationBoundsNs.size()> out{};
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<double>(kDurationBoundsNs[i]) / kNsPerSecond;
  return out;
}();
const std::array<double, kSizeBoundCount> kSizeBounds = [] {
  std::array<double, kSizeBoundCount> out{};
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<double>(std::uint64_t{1024} << i);
  return out;
}();

prometheus::MetricFamily family(std::string name, std::string help, prometheus::MetricType type) {
  prometheus::MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

// Go's exporter orders series by label values; label names are already in
// the same (alphabetical) order in every series of a family.
void sort_series(prometheus::MetricFamily& f) {
  std::sort(f.metric.begin(), f.metric.end(),
            [](const prometheus::ClientMetric& a, const prometheus::ClientMetric& b) { return a.label < b.label; });
}

// strconv.FormatFloat(v, 'g', -1, 64), which Go's text exposition uses: the
// shortest round-trip digits, in exponent form when the exponent is < -4 or
// >= 6 (so 1048576 is "1.048576e+06").
std::string go_float(double v) {
  std::array<char, 64> buf{};
  auto sci = std::to_chars(buf.data(), buf.data() + buf.size(), v, std::chars_format::scientific);
  std::string_view s(buf.data(), static_cast<std::size_t>(sci.ptr - buf.data()));
  int exponent = std::atoi(s.data() + s.find('e') + 1);
  if (exponent < -4 || exponent >= 6) return std::string(s);
  auto fixed = std::to_chars(buf.data(), buf.data() + buf.size(), v, std::chars_format::fixed);
  return std::string(buf.data(), fixed.ptr);
}

// In Prometheus 2.x `le` is an ordinary label: "1048576" and "1.048576e+06"
// are different series. prometheus-cpp prints the former, distribution the
// latter, so rewrite the bucket bounds to keep series identical across a
// switch. Label values never contain an unescaped quote, so `{le="` and
// `,le="` can only start an `le` label.
std::string with_go_style_le(const std::string& text) {
  std::string out;
  out.reserve(text.size() + text.size() / 16);
  std::size_t pos = 0;
  while (true) {
    auto hit = text.find("le=\"", pos);
    if (hit == std::string::npos) break;
    auto value_begin = hit + 4;
    auto value_end = text.find('"', value_begin);
    if (value_end == std::string::npos) break;
    out.append(text, pos, value_begin - pos);
    std::string_view value(text.data() + value_begin, value_end - value_begin);
    double bound = 0;
    auto parsed = std::from_chars(value.data(), value.data() + value.size(), bound);
    bool is_label = hit > 0 && (text[hit - 1] == '{' || text[hit - 1] == ',');
    if (is_label && parsed.ec == std::errc() && parsed.ptr == value.data() + value.size())
      out += go_float(bound);
    else
      out.append(value);
    pos = value_end;
  }
  out.append(text, pos, std::string::npos);
  return out;
}

}  // namespace

// All numbers of one shard, or the merge of several.
struct MetricsShard::Snapshot {
  std::array<std::int64_t, kHandlerCount> in_flight{};
  CodeCounters requests;                                  // [code][handler, method]
  std::array<DurationBuckets, kHandlerMethodCount> duration{};  // [handler, method]
  std::array<SizeBuckets, kHandlerCount> request_size{};
  std::array<SizeBuckets, kHandlerCount> response_size{};

  void record(const Exchange& e) {
    auto h = static_cast<std::size_t>(e.handler);
    auto series = series_index(e.handler, e.method);
    --in_flight[h];
    requests.add(code_of(e.status), series, 1);
    auto ns = std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::nanoseconds>(e.finished - e.started).count());
    duration[series].observe(duration_bucket(ns), static_cast<std::uint64_t>(ns));
    request_size[h].observe(size_bucket(e.request_body_bytes), e.request_body_bytes);
    response_size[h].observe(size_bucket(e.response_body_bytes), e.response_body_bytes);
  }

  void add(const Snapshot& other) {
    for (std::size_t h = 0; h < kHandlerCount; ++h) {
      in_flight[h] += other.in_flight[h];
      request_size[h].add(other.request_size[h]);
      response_size[h].add(other.response_size[h]);
    }
    for (std::size_t s = 0; s < kHandlerMethodCount; ++s) duration[s].add(other.duration[s]);
    requests.add(other.requests);
  }

  // Like distribution: the in-flight gauge exists for every handler from the
  // start; counter and histogram series appear once observed.
  std::vector<prometheus::MetricFamily> families() const {
    using prometheus::MetricType;
    auto handler_of = [](std::size_t h) { return handler_name(static_cast<Handler>(h)); };
    auto method_of = [](std::size_t s) { return method_name(static_cast<Method>(s % kSeriesPerHandler)); };

    auto gauge = family("registry_http_in_flight_requests", "The in-flight HTTP requests", MetricType::Gauge);
    for (std::size_t h = 0; h < kHandlerCount; ++h) {
      prometheus::ClientMetric m;
      m.label = {label("handler", handler_of(h))};
      m.gauge.value = static_cast<double>(in_flight[h]);
      gauge.metric.push_back(std::move(m));
    }

    auto total = family("registry_http_requests_total", "Total number of HTTP requests made.", MetricType::Counter);
    for (const auto& row : requests.rows()) {
      auto code = std::to_string(row.code);
      for (std::size_t s = 0; s < row.counts.size(); ++s) {
        if (row.counts[s] == 0) continue;
        prometheus::ClientMetric m;
        m.label = {label("code", code), label("handler", handler_of(s / kSeriesPerHandler)), label("method", method_of(s))};
        m.counter.value = static_cast<double>(row.counts[s]);
        total.metric.push_back(std::move(m));
      }
    }

    auto latency = family("registry_http_request_duration_seconds", "The HTTP request latencies in seconds.",
                          MetricType::Histogram);
    for (std::size_t s = 0; s < kHandlerMethodCount; ++s) {
      if (duration[s].count() == 0) continue;
      latency.metric.push_back(histogram_metric(
          {label("handler", handler_of(s / kSeriesPerHandler)), label("method", method_of(s))}, duration[s],
          kDurationBoundsSeconds, kNsPerSecond));
    }

    auto request_bytes = family("registry_http_request_size_bytes", "The HTTP request sizes in bytes.",
                                MetricType::Histogram);
    auto response_bytes = family("registry_http_response_size_bytes", "The HTTP response sizes in bytes.",
                                 MetricType::Histogram);
    for (std::size_t h = 0; h < kHandlerCount; ++h) {
      if (request_size[h].count() != 0)
        request_bytes.metric.push_back(
            histogram_metric({label("handler", handler_of(h))}, request_size[h], kSizeBounds, 1.0));
      if (response_size[h].count() != 0)
        response_bytes.metric.push_back(
            histogram_metric({label("handler", handler_of(h))}, response_size[h], kSizeBounds, 1.0));
    }

    std::vector<prometheus::MetricFamily> out;
    for (auto* f : {&gauge, &total, &latency, &request_bytes, &response_bytes}) {
      if (f->metric.empty()) continue;  // an empty family is a HELP/TYPE with no samples
      sort_series(*f);
      out.push_back(std::move(*f));
    }
    return out;
  }
};

// ---- MetricsShard ----

// Cache-line aligned so two workers' shards never share a line.
struct alignas(64) MetricsShard::Impl {
  mutable std::mutex mutex;
  Snapshot data;
};

MetricsShard::MetricsShard() : impl_(std::make_unique<Impl>()) {}
MetricsShard::~MetricsShard() = default;

void MetricsShard::request_started(Handler handler) {
  std::lock_guard lock(impl_->mutex);
  ++impl_->data.in_flight[static_cast<std::size_t>(handler)];
}

void MetricsShard::request_finished(const Exchange& exchange) {
  std::lock_guard lock(impl_->mutex);
  impl_->data.record(exchange);
}

void MetricsShard::merge_into(Snapshot& out) const {
  std::lock_guard lock(impl_->mutex);
  out.add(impl_->data);
}

// ---- Metrics ----

namespace {

// The HTTP families as a prometheus-cpp Collectable: each scrape merges the
// shards, locking one at a time so no worker waits for more than one copy.
class HttpCollector final : public prometheus::Collectable {
 public:
  explicit HttpCollector(const std::vector<std::unique_ptr<MetricsShard>>& shards) : shards_(shards) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    auto merged = std::make_unique<MetricsShard::Snapshot>();  // ~15 KiB: keep it off the stack
    for (const auto& shard : shards_) shard->merge_into(*merged);
    return merged->families();
  }

 private:
  const std::vector<std::unique_ptr<MetricsShard>>& shards_;
};

}  // namespace

struct Metrics::Impl {
  std::vector<std::unique_ptr<MetricsShard>> shards;
  HttpCollector http{shards};
  prometheus::Registry registry;
};

Metrics::Metrics(std::size_t shard_count) : impl_(std::make_unique<Impl>()) {
  if (shard_count == 0) throw std::invalid_argument("Metrics needs at least one shard");
  impl_->shards.reserve(shard_count);
  for (std::size_t i = 0; i < shard_count; ++i) impl_->shards.push_back(std::make_unique<MetricsShard>());
}

Metrics::~Metrics() = default;

MetricsShard& Metrics::shard(std::size_t index) { return *impl_->shards.at(index); }

std::size_t Metrics::shard_count() const { return impl_->shards.size(); }

prometheus::Registry& Metrics::registry() { return impl_->registry; }

std::string Metrics::render_text() const {
  auto families = impl_->http.Collect();
  auto cold = impl_->registry.Collect();
  families.insert(families.end(), std::make_move_iterator(cold.begin()), std::make_move_iterator(cold.end()));
  std::stable_sort(families.begin(), families.end(),
                   [](const prometheus::MetricFamily& a, const prometheus::MetricFamily& b) { return a.name < b.name; });
  return with_go_style_le(prometheus::TextSerializer().Serialize(families));
}

}  // namespace regmeter
