#include "core/exposition_format.h"

#include <optional>

#include "core/ascii.h"
#include "core/openmetrics_writer.h"
#include "core/protobuf_writer.h"

namespace regmeter {
namespace {

// distribution's promhttp content type for the text format.
constexpr std::string_view kTextContentType = "text/plain; version=0.0.4; charset=utf-8";

std::string_view unquote(std::string_view v) {
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') return v.substr(1, v.size() - 2);
  return v;
}

// q in thousandths (RFC 9110 §12.4.2: at most three decimals); nullopt when
// malformed, which makes the whole range ignored.
std::optional<int> parse_q(std::string_view v) {
  if (v.empty() || (v[0] != '0' && v[0] != '1')) return std::nullopt;
  int whole = v[0] - '0';
  int thousandths = 0;
  if (v.size() > 1) {
    if (v[1] != '.' || v.size() > 5) return std::nullopt;
    int scale = 100;
    for (char c : v.substr(2)) {
      if (c < '0' || c > '9') return std::nullopt;
      thousandths += (c - '0') * scale;
      scale /= 10;
    }
  }
  int q = whole * 1000 + thousandths;
  return q > 1000 ? std::nullopt : std::optional<int>(q);
}

struct Range {
  std::optional<ExpositionFormat> format;  // nullopt: nothing we serve
  int q = 1000;
};

Range parse_range(std::string_view element) {
  Range out;
  auto semicolon = element.find(';');
  std::string_view type = ascii_trim(element.substr(0, semicolon));
  std::string_view proto, encoding, version;
  bool has_encoding = false, has_version = false;
  std::string_view rest = semicolon == std::string_view::npos ? std::string_view() : element.substr(semicolon + 1);
  while (!rest.empty()) {
    auto next = rest.find(';');
    std::string_view param = ascii_trim(rest.substr(0, next));
    rest = next == std::string_view::npos ? std::string_view() : rest.substr(next + 1);
    auto eq = param.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view name = ascii_trim(param.substr(0, eq));
    std::string_view value = unquote(ascii_trim(param.substr(eq + 1)));
    if (ascii_iequals(name, "q")) {
      auto q = parse_q(value);
      if (!q) return Range{std::nullopt, 0};
      out.q = *q;
    } else if (ascii_iequals(name, "proto")) {
      proto = value;
    } else if (ascii_iequals(name, "encoding")) {
      encoding = value, has_encoding = true;
    } else if (ascii_iequals(name, "version")) {
      version = value, has_version = true;
    }
  }
  if (ascii_iequals(type, "application/vnd.google.protobuf")) {
    if (proto == "io.prometheus.client.MetricFamily" && (!has_encoding || encoding == "delimited"))
      out.format = ExpositionFormat::protobuf;
  } else if (ascii_iequals(type, "application/openmetrics-text")) {
    if (!has_version || version == "1.0.0") out.format = ExpositionFormat::openmetrics;
  } else if (ascii_iequals(type, "text/plain") || ascii_iequals(type, "text/*") || ascii_iequals(type, "*/*")) {
    // Only version 0.0.4 of the text format exists; other versions are not ours.
    if (!has_version || version == "0.0.4") out.format = ExpositionFormat::text;
  }
  return out;
}

}  // namespace

ExpositionFormat negotiate_exposition(std::string_view accept) {
  ExpositionFormat best = ExpositionFormat::text;
  int best_q = 0;
  while (!accept.empty()) {
    auto comma = accept.find(',');
    Range range = parse_range(ascii_trim(accept.substr(0, comma)));
    accept = comma == std::string_view::npos ? std::string_view() : accept.substr(comma + 1);
    if (range.format && range.q > best_q) {
      best = *range.format;
      best_q = range.q;
    }
  }
  return best;
}

std::string_view content_type_of(ExpositionFormat format) {
  switch (format) {
    case ExpositionFormat::protobuf: return kProtobufContentType;
    case ExpositionFormat::openmetrics: return kOpenMetricsContentType;
    case ExpositionFormat::text: break;
  }
  return kTextContentType;
}

std::string_view format_name(ExpositionFormat format) {
  switch (format) {
    case ExpositionFormat::protobuf: return "protobuf";
    case ExpositionFormat::openmetrics: return "openmetrics";
    case ExpositionFormat::text: break;
  }
  return "text";
}

}  // namespace regmeter
