// libFuzzer target: the two header values issue 17 reads from untrusted
// input, a W3C `traceparent` (from any client, on the data port) and the
// `Accept` of a /metrics scrape.
//
// Invariants besides "no crash, no sanitizer report":
//  * parse_traceparent: a parsed trace id is never all zero, its hex is the
//    32 characters after the first "xx-" of the trimmed value, the value has
//    at least 55 characters, and version 00 exactly 55; surrounding spaces
//    and tabs do not change the answer;
//  * negotiate_exposition: deterministic, one of the three formats, and
//    appending a range we do not serve (",application/x-none") never changes
//    the answer.
#include <cstdint>
#include <string>
#include <string_view>

#include "core/exemplar.h"
#include "core/exposition_format.h"
#include "fuzz_common.h"

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

void check_traceparent(std::string_view value) {
  auto parsed = regmeter::parse_traceparent(value);
  auto again = regmeter::parse_traceparent(std::string(" \t") + std::string(value) + "\t ");
  FUZZ_CHECK(parsed.has_value() == again.has_value() && (!parsed || *parsed == *again),
             "surrounding whitespace changed the answer for [%s]", fuzz::shown(value).c_str());
  if (!parsed) return;
  FUZZ_CHECK(!parsed->empty(), "all-zero trace id accepted from [%s]", fuzz::shown(value).c_str());
  std::string_view t = trim(value);
  FUZZ_CHECK(t.size() >= 55, "trace id from a value of %zu characters: [%s]", t.size(), fuzz::shown(value).c_str());
  if (t.substr(0, 2) == "00") FUZZ_CHECK(t.size() == 55, "version 00 with %zu characters", t.size());
  auto hex = regmeter::to_hex(*parsed);
  FUZZ_CHECK(t.substr(3, 32) == std::string_view(hex.data(), hex.size()), "trace id %.*s is not the value's [%s]",
             32, hex.data(), fuzz::shown(value).c_str());
}

void check_accept(std::string_view accept) {
  auto format = regmeter::negotiate_exposition(accept);
  FUZZ_CHECK(format == regmeter::negotiate_exposition(accept), "not deterministic for [%s]",
             fuzz::shown(accept).c_str());
  FUZZ_CHECK(format == regmeter::ExpositionFormat::text || format == regmeter::ExpositionFormat::openmetrics ||
                 format == regmeter::ExpositionFormat::protobuf,
             "no such format for [%s]", fuzz::shown(accept).c_str());
  auto extended = std::string(accept) + ",application/x-none";
  FUZZ_CHECK(regmeter::negotiate_exposition(extended) == format, "a range we do not serve changed [%s]",
             fuzz::shown(accept).c_str());
  FUZZ_CHECK(!regmeter::content_type_of(format).empty(), "no content type");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 64 * 1024) return 0;
  std::string_view whole(reinterpret_cast<const char*>(data), size);
  check_traceparent(whole);
  check_accept(whole);
  // The second half of the input as the other header too, so that a corpus
  // of one kind also exercises the other parser.
  check_traceparent(whole.substr(size / 2));
  check_accept(whole.substr(size / 2));
  return 0;
}
