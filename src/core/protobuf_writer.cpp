#include "core/protobuf_writer.h"

#include <bit>
#include <cstdint>

namespace regmeter {
namespace {

// Field numbers of prometheus/client_model io/prometheus/client/metrics.proto.
namespace field {
constexpr int kLabelName = 1, kLabelValue = 2;                                    // LabelPair
constexpr int kFamilyName = 1, kFamilyHelp = 2, kFamilyType = 3, kFamilyMetric = 4;  // MetricFamily
constexpr int kMetricLabel = 1, kMetricGauge = 2, kMetricCounter = 3, kMetricHistogram = 7;  // Metric
constexpr int kGaugeValue = 1;                                                    // Gauge
constexpr int kCounterValue = 1, kCounterExemplar = 2;                            // Counter
constexpr int kHistogramCount = 1, kHistogramSum = 2, kHistogramBucket = 3, kHistogramSchema = 5,
              kHistogramZeroThreshold = 6, kHistogramZeroCount = 7, kHistogramPositiveSpan = 12,
              kHistogramPositiveDelta = 13;                                       // Histogram
constexpr int kBucketCumulativeCount = 1, kBucketUpperBound = 2, kBucketExemplar = 3;  // Bucket
constexpr int kSpanOffset = 1, kSpanLength = 2;                                   // BucketSpan
constexpr int kExemplarLabel = 1, kExemplarValue = 2, kExemplarTimestamp = 3;     // Exemplar
constexpr int kTimestampSeconds = 1, kTimestampNanos = 2;                         // google.protobuf.Timestamp
}  // namespace field

// MetricType enum values.
constexpr std::uint64_t kTypeCounter = 0, kTypeGauge = 1, kTypeHistogram = 4;

enum WireType : std::uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2 };

// A run of more than this many empty native buckets starts a new span: a
// span costs about 6 bytes, an empty bucket inside one a delta or two.
constexpr std::size_t kMaxEmptyBucketsInSpan = 2;

class Encoder {
 public:
  explicit Encoder(std::string& out) : out_(out) {}

  // Appends build each value in a small buffer first: one append per
  // value, not one per byte.
  void varint(std::uint64_t v) {
    char buf[10];
    std::size_t n = 0;
    while (v >= 0x80) {
      buf[n++] = static_cast<char>(v | 0x80);
      v >>= 7;
    }
    buf[n++] = static_cast<char>(v);
    out_.append(buf, n);
  }
  void tag(int number, WireType type) { varint(static_cast<std::uint64_t>(number) << 3 | type); }
  void uint_field(int number, std::uint64_t v) {
    tag(number, kVarint);
    varint(v);
  }
  void sint_field(int number, std::int64_t v) {
    tag(number, kVarint);
    varint(zigzag(v));
  }
  void double_field(int number, double v) {
    tag(number, kFixed64);
    auto bits = std::bit_cast<std::uint64_t>(v);
    char buf[8];
    for (int i = 0; i < 8; ++i) buf[i] = static_cast<char>(bits >> (8 * i));  // little-endian
    out_.append(buf, sizeof buf);
  }
  void string_field(int number, std::string_view s) {
    tag(number, kLengthDelimited);
    varint(s.size());
    out_ += s;
  }

  // A length-delimited part whose length is known only once written: one
  // byte is reserved for the length, and end() widens it in place when the
  // part reached 128 bytes (moving only that part's own bytes).
  std::size_t begin_message(int number) {
    tag(number, kLengthDelimited);
    return begin_length();
  }
  std::size_t begin_length() {
    out_ += '\0';
    return out_.size();
  }
  void end(std::size_t start) {
    std::uint64_t length = out_.size() - start;
    std::size_t width = 1;
    for (std::uint64_t v = length; v >= 0x80; v >>= 7) ++width;
    if (width > 1) out_.insert(start, width - 1, '\0');
    char* p = out_.data() + start - 1;
    for (std::size_t i = 0; i + 1 < width; ++i) {
      *p++ = static_cast<char>(length | 0x80);
      length >>= 7;
    }
    *p = static_cast<char>(length);
  }

  static std::uint64_t zigzag(std::int64_t v) {
    return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
  }

 private:
  std::string& out_;
};

void write_label(Encoder& e, int number, std::string_view name, std::string_view value) {
  auto label = e.begin_message(number);
  e.string_field(field::kLabelName, name);
  e.string_field(field::kLabelValue, value);
  e.end(label);
}

void write_exemplar(Encoder& e, int number, const Exemplar* exemplar) {
  if (exemplar == nullptr || exemplar->empty()) return;
  auto message = e.begin_message(number);
  auto request_id = to_hex(exemplar->request_id);
  write_label(e, field::kExemplarLabel, kRequestIdLabel, std::string_view(request_id.data(), request_id.size()));
  if (!exemplar->trace_id.empty()) {
    auto trace_id = to_hex(exemplar->trace_id);
    write_label(e, field::kExemplarLabel, kTraceIdLabel, std::string_view(trace_id.data(), trace_id.size()));
  }
  e.double_field(field::kExemplarValue, exemplar->value);
  auto timestamp = e.begin_message(field::kExemplarTimestamp);
  std::int64_t seconds = exemplar->unix_nanos / 1'000'000'000;
  std::int64_t nanos = exemplar->unix_nanos % 1'000'000'000;
  if (nanos < 0) {  // Timestamp.nanos is always 0..999999999
    nanos += 1'000'000'000;
    --seconds;
  }
  e.uint_field(field::kTimestampSeconds, static_cast<std::uint64_t>(seconds));
  e.uint_field(field::kTimestampNanos, static_cast<std::uint64_t>(nanos));
  e.end(timestamp);
  e.end(message);
}

// Calls span(offset, length) for each span of native.counts, then
// delta(count - previous count) for each bucket inside it. Runs of up to
// kMaxEmptyBucketsInSpan empty buckets stay inside a span.
template <typename SpanFn, typename DeltaFn>
void for_each_span(const NativeBucketsView& native, SpanFn&& span, DeltaFn&& delta) {
  const auto& counts = native.counts;
  const std::size_t n = counts.size();
  std::int64_t next_index = 0;  // the first span's offset counts from index 0, later ones from the previous end
  std::uint64_t previous = 0;
  std::size_t i = 0;
  while (i < n) {
    if (counts[i] == 0) {
      ++i;
      continue;
    }
    std::size_t start = i;
    std::size_t end = i + 1;  // one past the span's last non-empty bucket
    std::size_t j = end;
    while (j < n) {
      if (counts[j] != 0) {
        end = ++j;
        continue;
      }
      std::size_t run_end = j;
      while (run_end < n && counts[run_end] == 0) ++run_end;
      if (run_end == n || run_end - j > kMaxEmptyBucketsInSpan) break;
      j = run_end;
    }
    std::int64_t index = std::int64_t{native.first_index} + static_cast<std::int64_t>(start);
    span(index - next_index, end - start);
    for (std::size_t b = start; b < end; ++b) {
      delta(static_cast<std::int64_t>(counts[b] - previous));
      previous = counts[b];
    }
    next_index = index + static_cast<std::int64_t>(end - start);
    i = end;
  }
}

void write_native(Encoder& e, const NativeBucketsView& native) {
  e.sint_field(field::kHistogramSchema, native.schema);
  e.double_field(field::kHistogramZeroThreshold, native.zero_threshold);
  e.uint_field(field::kHistogramZeroCount, native.zero_count);
  bool any_span = false;
  for_each_span(
      native,
      [&](std::int64_t offset, std::size_t length) {
        any_span = true;
        auto span = e.begin_message(field::kHistogramPositiveSpan);
        e.sint_field(field::kSpanOffset, offset);
        e.uint_field(field::kSpanLength, length);
        e.end(span);
      },
      [](std::int64_t) {});
  if (!any_span) {  // the no-op span: without it an empty native histogram reads as classic
    auto span = e.begin_message(field::kHistogramPositiveSpan);
    e.sint_field(field::kSpanOffset, 0);
    e.uint_field(field::kSpanLength, 0);
    e.end(span);
    return;
  }
  auto deltas = e.begin_message(field::kHistogramPositiveDelta);  // packed
  for_each_span(
      native, [](std::int64_t, std::size_t) {}, [&](std::int64_t d) { e.varint(Encoder::zigzag(d)); });
  e.end(deltas);
}

void write_histogram(Encoder& e, const HistogramView& h) {
  e.uint_field(field::kHistogramCount, h.count);
  e.double_field(field::kHistogramSum, h.sum);
  for (const auto& b : h.buckets) {
    auto bucket = e.begin_message(field::kHistogramBucket);
    e.uint_field(field::kBucketCumulativeCount, b.cumulative_count);
    e.double_field(field::kBucketUpperBound, b.upper_bound);
    write_exemplar(e, field::kBucketExemplar, b.exemplar);
    e.end(bucket);
  }
  if (h.native != nullptr) write_native(e, *h.native);
}

void write_series(Encoder& e, FamilyType type, const SeriesView& s) {
  auto metric = e.begin_message(field::kFamilyMetric);
  for (const auto& label : s.labels) write_label(e, field::kMetricLabel, label.name, label.value);
  switch (type) {
    case FamilyType::counter: {
      auto counter = e.begin_message(field::kMetricCounter);
      e.double_field(field::kCounterValue, s.value);
      write_exemplar(e, field::kCounterExemplar, s.exemplar);
      e.end(counter);
      break;
    }
    case FamilyType::gauge: {
      auto gauge = e.begin_message(field::kMetricGauge);
      e.double_field(field::kGaugeValue, s.value);
      e.end(gauge);
      break;
    }
    case FamilyType::histogram: {
      auto histogram = e.begin_message(field::kMetricHistogram);
      write_histogram(e, s.histogram);
      e.end(histogram);
      break;
    }
  }
  e.end(metric);
}

std::uint64_t type_number(FamilyType type) {
  switch (type) {
    case FamilyType::counter: return kTypeCounter;
    case FamilyType::gauge: return kTypeGauge;
    case FamilyType::histogram: return kTypeHistogram;
  }
  return kTypeGauge;
}

}  // namespace

void append_protobuf(std::span<const FamilyView> families, std::string& out) {
  Encoder e(out);
  for (const auto& family : families) {
    auto message = e.begin_length();  // the delimiting length before each MetricFamily
    e.string_field(field::kFamilyName, family.name);
    if (!family.help.empty()) e.string_field(field::kFamilyHelp, family.help);
    e.uint_field(field::kFamilyType, type_number(family.type));
    for (const auto& series : family.series) write_series(e, family.type, series);
    e.end(message);
  }
}

}  // namespace regmeter
