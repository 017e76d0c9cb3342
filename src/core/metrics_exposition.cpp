#include "core/metrics_exposition.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>
#include <string_view>

#include "core/exposition.h"
#include "core/openmetrics_writer.h"
#include "core/protobuf_writer.h"

namespace regmeter {
namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// OpenMetrics `# UNIT` from the name's suffix (the writer checks the suffix
// rule again): every regmeter family is named after its unit.
std::string_view unit_of(std::string_view name) {
  if (ends_with(name, "_total")) name.remove_suffix(6);
  if (ends_with(name, "_seconds")) return "seconds";
  if (ends_with(name, "_bytes")) return "bytes";
  return {};
}

std::optional<FamilyType> type_of(prometheus::MetricType t) {
  switch (t) {
    case prometheus::MetricType::Counter: return FamilyType::counter;
    case prometheus::MetricType::Gauge: return FamilyType::gauge;
    case prometheus::MetricType::Untyped: return FamilyType::gauge;  // cold path only; exposed as the gauge it acts as
    case prometheus::MetricType::Histogram: return FamilyType::histogram;
    default: return std::nullopt;  // summaries and info: none are built
  }
}

// Owns the view arrays the writers read; reserved up front so the spans
// and pointers handed out stay valid while it is filled.
struct ViewStore {
  std::vector<FamilyView> families;
  std::vector<SeriesView> series;
  std::vector<LabelView> labels;
  std::vector<ClassicBucketView> buckets;
  std::vector<NativeBucketsView> natives;

  ViewStore(std::span<const CollectedFamily> input) {
    std::size_t series_count = 0, label_count = 0, bucket_count = 0;
    for (const auto& f : input) {
      series_count += f.family.metric.size();
      for (const auto& m : f.family.metric) {
        label_count += m.label.size();
        bucket_count += m.histogram.bucket.size();
      }
    }
    families.reserve(input.size());
    series.reserve(series_count);
    labels.reserve(label_count);
    buckets.reserve(bucket_count);
    natives.reserve(series_count);
  }
};

void build_views(std::span<const CollectedFamily> input, ExpositionFormat format, ViewStore& store) {
  for (const auto& collected : input) {
    const auto& f = collected.family;
    auto type = type_of(f.type);
    if (!type) continue;
    std::size_t first_series = store.series.size();
    for (std::size_t i = 0; i < f.metric.size(); ++i) {
      const auto& m = f.metric[i];
      SeriesExtras extra = i < collected.extras.size() ? collected.extras[i] : SeriesExtras{};
      SeriesView s;
      std::size_t first_label = store.labels.size();
      for (const auto& l : m.label) store.labels.push_back(LabelView{l.name, l.value});
      s.labels = std::span<const LabelView>(store.labels.data() + first_label, m.label.size());
      if (*type == FamilyType::counter) {
        s.value = m.counter.value;
        s.exemplar = extra.exemplar;
      } else if (*type == FamilyType::gauge) {
        s.value = f.type == prometheus::MetricType::Untyped ? m.untyped.value : m.gauge.value;
      } else {
        const auto& h = m.histogram;
        s.histogram.count = h.sample_count;
        s.histogram.sum = h.sample_sum;
        std::size_t first_bucket = store.buckets.size();
        for (std::size_t b = 0; b < h.bucket.size(); ++b) {
          // Prometheus takes the +Inf bucket of a protobuf histogram from
          // sample_count; an explicit one would risk a second +Inf sample.
          bool inf = std::isinf(h.bucket[b].upper_bound);
          if (inf && format == ExpositionFormat::protobuf) continue;
          const Exemplar* ex = extra.bucket_exemplars ? &extra.bucket_exemplars[b] : nullptr;
          store.buckets.push_back(ClassicBucketView{h.bucket[b].upper_bound, h.bucket[b].cumulative_count, ex});
        }
        s.histogram.buckets =
            std::span<const ClassicBucketView>(store.buckets.data() + first_bucket, store.buckets.size() - first_bucket);
        // OpenMetrics 1.0 has no native buckets; only protobuf carries them.
        if (extra.native != nullptr && format == ExpositionFormat::protobuf) {
          store.natives.push_back(extra.native->view());
          s.histogram.native = &store.natives.back();
        }
      }
      store.series.push_back(s);
    }
    FamilyView view;
    view.name = f.name;
    view.help = f.help;
    view.unit = unit_of(f.name);
    view.type = *type;
    view.series = std::span<const SeriesView>(store.series.data() + first_series, store.series.size() - first_series);
    store.families.push_back(view);
  }
}

}  // namespace

void sort_series(CollectedFamily& f) {
  auto& metrics = f.family.metric;
  if (f.extras.empty()) {
    std::stable_sort(metrics.begin(), metrics.end(),
                     [](const prometheus::ClientMetric& a, const prometheus::ClientMetric& b) { return a.label < b.label; });
    return;
  }
  std::vector<std::size_t> order(metrics.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return metrics[a].label < metrics[b].label; });
  std::vector<prometheus::ClientMetric> sorted;
  std::vector<SeriesExtras> sorted_extras;
  sorted.reserve(order.size());
  sorted_extras.reserve(order.size());
  for (auto i : order) {
    sorted.push_back(std::move(metrics[i]));
    sorted_extras.push_back(i < f.extras.size() ? f.extras[i] : SeriesExtras{});
  }
  metrics = std::move(sorted);
  f.extras = std::move(sorted_extras);
}

void append_exposition(std::span<const CollectedFamily> families, ExpositionFormat format, std::string& out) {
  ViewStore store(families);
  build_views(families, format, store);
  if (format == ExpositionFormat::protobuf)
    append_protobuf(store.families, out);
  else
    append_openmetrics(store.families, out);
}

}  // namespace regmeter
