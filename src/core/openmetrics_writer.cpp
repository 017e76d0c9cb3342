#include "core/openmetrics_writer.h"

#include <charconv>
#include <cmath>
#include <cstdint>

#include "core/float_format.h"

namespace regmeter {
namespace {

constexpr std::string_view kTotalSuffix = "_total";

// OpenMetrics escapes the same three characters in label values and in HELP.
// Runs without them (nearly every value) are appended whole.
void append_escaped(std::string& out, std::string_view s) {
  std::size_t run = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char* escaped = s[i] == '\\' ? "\\\\" : s[i] == '"' ? "\\\"" : s[i] == '\n' ? "\\n" : nullptr;
    if (escaped == nullptr) continue;
    out.append(s.data() + run, i - run);
    out.append(escaped, 2);
    run = i + 1;
  }
  out.append(s.data() + run, s.size() - run);
}

void append_uint(std::string& out, std::uint64_t v) {
  char buf[20];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// Unix time in seconds with up to nine decimals, trailing zeros dropped.
void append_unix_seconds(std::string& out, std::int64_t unix_nanos) {
  std::int64_t seconds = unix_nanos / 1'000'000'000;
  std::int64_t nanos = unix_nanos % 1'000'000'000;
  if (nanos < 0) {
    nanos += 1'000'000'000;
    --seconds;
  }
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, seconds);
  out.append(buf, r.ptr);
  if (nanos == 0) return;
  char fraction[10] = {'.', '0', '0', '0', '0', '0', '0', '0', '0', '0'};
  for (int i = 9; i >= 1; --i) {
    fraction[i] = static_cast<char>('0' + nanos % 10);
    nanos /= 10;
  }
  int length = 10;
  while (fraction[length - 1] == '0') --length;
  out.append(fraction, static_cast<std::size_t>(length));
}

void append_label(std::string& out, std::string_view name, std::string_view value) {
  out += name;
  out += "=\"";
  append_escaped(out, value);
  out += '"';
}

// `name{labels}` or `name{labels,le="bound"}`; no braces when there are none.
void append_sample_name(std::string& out, std::string_view family, std::string_view suffix,
                        std::span<const LabelView> labels, const double* le = nullptr) {
  out += family;
  out += suffix;
  if (labels.empty() && le == nullptr) return;
  out += '{';
  bool first = true;
  for (const auto& label : labels) {
    if (!first) out += ',';
    first = false;
    append_label(out, label.name, label.value);
  }
  if (le != nullptr) {
    if (!first) out += ',';
    out += "le=\"";
    append_go_float(out, *le);
    out += '"';
  }
  out += '}';
}

void append_exemplar(std::string& out, const Exemplar* exemplar) {
  if (exemplar == nullptr || exemplar->empty()) return;
  out += " # {";
  auto request_id = to_hex(exemplar->request_id);
  append_label(out, kRequestIdLabel, std::string_view(request_id.data(), request_id.size()));
  if (!exemplar->trace_id.empty()) {
    auto trace_id = to_hex(exemplar->trace_id);
    out += ',';
    append_label(out, kTraceIdLabel, std::string_view(trace_id.data(), trace_id.size()));
  }
  out += "} ";
  append_go_float(out, exemplar->value);
  out += ' ';
  append_unix_seconds(out, exemplar->unix_nanos);
}

void append_metadata(std::string& out, std::string_view keyword, std::string_view family, std::string_view text,
                     bool escape) {
  out += "# ";
  out += keyword;
  out += ' ';
  out += family;
  out += ' ';
  if (escape) {
    append_escaped(out, text);
  } else {
    out += text;
  }
  out += '\n';
}

void append_histogram(std::string& out, std::string_view family, const SeriesView& s) {
  const HistogramView& h = s.histogram;
  bool wrote_inf = false;
  for (const auto& b : h.buckets) {
    append_sample_name(out, family, "_bucket", s.labels, &b.upper_bound);
    out += ' ';
    append_uint(out, b.cumulative_count);
    append_exemplar(out, b.exemplar);
    out += '\n';
    wrote_inf = std::isinf(b.upper_bound) && b.upper_bound > 0;
  }
  if (!wrote_inf) {
    const double inf = INFINITY;
    append_sample_name(out, family, "_bucket", s.labels, &inf);
    out += ' ';
    append_uint(out, h.count);
    out += '\n';
  }
  append_sample_name(out, family, "_count", s.labels);
  out += ' ';
  append_uint(out, h.count);
  out += '\n';
  append_sample_name(out, family, "_sum", s.labels);
  out += ' ';
  append_go_float(out, h.sum);
  out += '\n';
}

}  // namespace

void append_openmetrics(std::span<const FamilyView> families, std::string& out) {
  for (const auto& f : families) {
    std::string_view family = f.name;
    if (f.type == FamilyType::counter && family.ends_with(kTotalSuffix)) family.remove_suffix(kTotalSuffix.size());
    std::string_view type = f.type == FamilyType::counter ? "counter"
                            : f.type == FamilyType::gauge ? "gauge"
                                                          : "histogram";
    append_metadata(out, "TYPE", family, type, false);
    if (!f.help.empty()) append_metadata(out, "HELP", family, f.help, true);
    if (!f.unit.empty() && family.size() > f.unit.size() && family.ends_with(f.unit) &&
        family[family.size() - f.unit.size() - 1] == '_')
      append_metadata(out, "UNIT", family, f.unit, false);
    for (const auto& s : f.series) {
      switch (f.type) {
        case FamilyType::counter:
          append_sample_name(out, family, kTotalSuffix, s.labels);
          out += ' ';
          append_go_float(out, s.value);
          append_exemplar(out, s.exemplar);
          out += '\n';
          break;
        case FamilyType::gauge:
          append_sample_name(out, family, "", s.labels);
          out += ' ';
          append_go_float(out, s.value);
          out += '\n';
          break;
        case FamilyType::histogram:
          append_histogram(out, family, s);
          break;
      }
    }
  }
  out += "# EOF\n";
}

}  // namespace regmeter
