// The storage of one declared family in a metrics shard, and what follows
// from its declaration (core/metric_families.h): merging two shards' worth
// and rendering it as a prometheus-cpp MetricFamily with its extras.
//
// A family is an array of cells, one per combination of its label values;
// a label space maps a cell index to those values. The cell decides the
// kind of series: a Histogram (Buckets sized by the declared bounds), a
// CounterCell (with an exemplar), a plain count, or a gauge value.
//
// Families whose series are not a fixed array (registry_http_requests_total
// has a row per status code seen; the per-repository families a slot per
// repository) use the same declarations and helpers, but render themselves
// (core/metrics_dynamic_families.h).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <prometheus/metric_family.h>

#include "core/metric_families.h"
#include "core/metric_histogram.h"
#include "core/metrics.h"
#include "core/metrics_exposition.h"
#include "core/pull_sessions.h"
#include "core/route.h"
#include "core/upload_session.h"

namespace regmeter {

enum class Direction : std::uint8_t { upload, download };
inline constexpr std::size_t kDirectionCount = 2;
inline std::string_view direction_name(std::size_t d) { return d == 0 ? "upload" : "download"; }

// ---- label spaces: cell index -> label values ----

struct NoLabelSpace {
  static constexpr std::size_t kSize = 1;
  static constexpr const auto& kNames = family_detail::kNoLabels;
  static std::array<std::string_view, 0> values(std::size_t) { return {}; }
};
struct HandlerSpace {
  static constexpr std::size_t kSize = kHandlerCount;
  static constexpr const auto& kNames = family_detail::kHandler;
  static std::array<std::string_view, 1> values(std::size_t h) { return {handler_name(static_cast<Handler>(h))}; }
};
// Index handler * kMethodCount + method (series_index).
struct HandlerMethodSpace {
  static constexpr std::size_t kSize = kHandlerCount * kMethodCount;
  static constexpr const auto& kNames = family_detail::kHandlerMethod;
  static std::array<std::string_view, 2> values(std::size_t s) {
    return {handler_name(static_cast<Handler>(s / kMethodCount)), method_name(static_cast<Method>(s % kMethodCount))};
  }
};
struct DirectionSpace {
  static constexpr std::size_t kSize = kDirectionCount;
  static constexpr const auto& kNames = family_detail::kDirection;
  static std::array<std::string_view, 1> values(std::size_t d) { return {direction_name(d)}; }
};
struct SessionOutcomeSpace {
  static constexpr std::size_t kSize = kSessionOutcomeCount;
  static constexpr const auto& kNames = family_detail::kOutcome;
  static std::array<std::string_view, 1> values(std::size_t o) { return {outcome_name(static_cast<SessionOutcome>(o))}; }
};
struct PullOutcomeSpace {
  static constexpr std::size_t kSize = kPullOutcomeCount;
  static constexpr const auto& kNames = family_detail::kOutcome;
  static std::array<std::string_view, 1> values(std::size_t o) {
    return {pull_outcome_name(static_cast<PullOutcome>(o))};
  }
};
struct RejectReasonSpace {
  static constexpr std::size_t kSize = kRejectReasonCount;
  static constexpr const auto& kNames = family_detail::kReason;
  static std::array<std::string_view, 1> values(std::size_t r) {
    return {reject_reason_name(static_cast<RejectReason>(r))};
  }
};

// ---- cells ----

// A counter whose series carries the exemplar of its latest increment.
struct CounterCell {
  std::uint64_t value = 0;
  Exemplar exemplar;

  void count(const ExemplarSource* source) {
    ++value;
    record_exemplar(exemplar, source, 1.0);
  }
  void add(const CounterCell& other) {
    value += other.value;
    keep_latest(exemplar, other.exemplar);
  }
};

// A histogram cell, sized by the family's declared bounds: Buckets<N, Sum,
// Native> with N = the declaration's bounds.size().
template <NativeBuckets Native = NativeBuckets::yes, typename Sum = std::uint64_t>
struct Histogram {
  template <std::size_t N>
  using Cell = Buckets<N, Sum, Native>;
};

// ---- rendering helpers ----

using Label = prometheus::ClientMetric::Label;

inline Label label(std::string_view name, std::string_view value) {
  return Label{std::string(name), std::string(value)};
}

// An empty family of the declaration (no series yet).
inline CollectedFamily declared_family(const FamilyDeclaration& d) {
  CollectedFamily f;
  f.family.name = std::string(d.name);
  f.family.help = std::string(d.help);
  f.family.type = d.type;
  return f;
}

// Label values paired with the declaration's names.
template <std::size_t N>
std::vector<Label> labels_of(const FamilyDeclaration& d, const std::array<std::string_view, N>& values) {
  std::vector<Label> out;
  out.reserve(N);
  for (std::size_t i = 0; i < N; ++i) out.push_back(label(d.labels[i], values[i]));
  return out;
}

template <std::size_t N, typename Sum, NativeBuckets Native>
void add_histogram(CollectedFamily& f, std::vector<Label> labels, const Buckets<N, Sum, Native>& buckets,
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
  f.family.metric.push_back(std::move(metric));
  f.extras.push_back(SeriesExtras{nullptr, buckets.exemplars.data(), buckets.native_or_null()});
}

inline void add_counter(CollectedFamily& f, std::vector<Label> labels, double value, const Exemplar* exemplar) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  m.counter.value = value;
  f.family.metric.push_back(std::move(m));
  f.extras.push_back(SeriesExtras{exemplar, nullptr, nullptr});
}

// Sorts the series and appends the family, unless it has none (an empty
// family would be a HELP/TYPE with no samples).
inline void append_family(CollectedFamily&& f, std::vector<CollectedFamily>& out) {
  if (f.family.metric.empty()) return;
  sort_series(f);
  out.push_back(std::move(f));
}

namespace family_detail {
template <typename T>
struct is_buckets : std::false_type {};
template <std::size_t N, typename Sum, NativeBuckets Native>
struct is_buckets<Buckets<N, Sum, Native>> : std::true_type {};

// A cell kind is a type (the cell itself) or a Histogram<...> (sized by N).
template <typename Kind, std::size_t N, typename = void>
struct CellOf {
  using type = Kind;
};
template <typename Kind, std::size_t N>
struct CellOf<Kind, N, std::void_t<typename Kind::template Cell<N>>> {
  using type = typename Kind::template Cell<N>;
};

constexpr bool same_names(std::span<const std::string_view> a, std::span<const std::string_view> b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i]) return false;
  return true;
}
}  // namespace family_detail

// ---- one declared family with a fixed set of cells ----

template <const FamilyDeclaration& D, typename Space, typename CellKind>
struct DeclaredFamily {
  using Cell = typename family_detail::CellOf<CellKind, D.bounds.size()>::type;
  static_assert(family_detail::same_names(D.labels, Space::kNames), "label space does not match the declaration");
  static constexpr bool kHistogram = family_detail::is_buckets<Cell>::value;
  static_assert(kHistogram == (D.type == prometheus::MetricType::Histogram), "cell type does not match the type");

  static constexpr const FamilyDeclaration& kDeclaration = D;
  std::array<Cell, Space::kSize> cells{};

  Cell& operator[](std::size_t i) { return cells[i]; }
  const Cell& operator[](std::size_t i) const { return cells[i]; }

  void add(const DeclaredFamily& other) {
    for (std::size_t i = 0; i < cells.size(); ++i) {
      if constexpr (std::is_arithmetic_v<Cell>)
        cells[i] += other.cells[i];
      else
        cells[i].add(other.cells[i]);
    }
  }

  void render(std::vector<CollectedFamily>& out) const {
    auto f = declared_family(D);
    for (std::size_t i = 0; i < cells.size(); ++i) {
      const Cell& cell = cells[i];
      if (D.presence == Presence::once_observed && !observed(cell)) continue;
      auto labels = labels_of(D, Space::values(i));
      if constexpr (kHistogram) {
        static constexpr auto kUpperBounds = exposed_bounds<D.bounds.size()>(D.bounds, D.unit);
        add_histogram(f, std::move(labels), cell, kUpperBounds, D.unit);
      } else if constexpr (std::is_same_v<Cell, CounterCell>) {
        add_counter(f, std::move(labels), static_cast<double>(cell.value), &cell.exemplar);
      } else {  // a plain number: no extras
        prometheus::ClientMetric m;
        m.label = std::move(labels);
        if (D.type == prometheus::MetricType::Gauge)
          m.gauge.value = static_cast<double>(cell);
        else
          m.counter.value = static_cast<double>(cell);
        f.family.metric.push_back(std::move(m));
      }
    }
    append_family(std::move(f), out);
  }

 private:
  static bool observed(const Cell& cell) {
    if constexpr (kHistogram)
      return cell.count() != 0;
    else if constexpr (std::is_same_v<Cell, CounterCell>)
      return cell.value != 0;
    else
      return cell != 0;
  }
};

// The position in a std::tuple of DeclaredFamily types of the one declared
// by D (a compile error when there is none). Matched by name, which is
// unique: comparing the declarations' addresses is not a constant
// expression for GCC under -fsanitize=undefined.
template <const FamilyDeclaration& D, typename Tuple>
struct DeclaredIndex;
template <const FamilyDeclaration& D, typename... Families>
struct DeclaredIndex<D, std::tuple<Families...>> {
  static constexpr std::size_t value = [] {
    constexpr std::array<bool, sizeof...(Families)> matches{(Families::kDeclaration.name == D.name)...};
    std::size_t i = 0;
    while (i < matches.size() && !matches[i]) ++i;
    return i;
  }();
  static_assert(value < sizeof...(Families), "no storage for this family");
};

}  // namespace regmeter
