// The OpenMetrics exposition, line by line, and read back by an independent
// strict parser (prometheus_client's, tests/unit/data/openmetrics_parse.py).
// promtool is no help here: Debian's promtool 2.42 `check metrics` parses
// the text format 0.0.4 only and rejects exemplars.
#include "core/openmetrics_writer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "core/native_histogram.h"
#include "run_tool.h"

namespace regmeter {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string render(std::span<const FamilyView> families) {
  std::string out;
  append_openmetrics(families, out);
  return out;
}

// What prometheus_client's parser read (see openmetrics_parse.py).
std::string parse_independently(const std::string& exposition) {
  std::string python = test::env("DEBIAN_PYTHON");
  std::string script = test::env("OPENMETRICS_PARSE");
  if (python.empty() || script.empty()) {
    ADD_FAILURE() << "DEBIAN_PYTHON and OPENMETRICS_PARSE must be set (tests/meson.build does)";
    return {};
  }
  auto result = test::run_tool(test::shell_quote(python) + " " + test::shell_quote(script), exposition);
  EXPECT_EQ(result.exit_code, 0) << result.err << "\nfor:\n" << exposition;
  return result.out;
}

TraceId spec_trace_id() { return *parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"); }

struct Exposition {
  Exemplar traced{RequestId{1, 2}, spec_trace_id(), 0.67, 1712345678'123000000};
  Exemplar untraced{RequestId{0xabc, 0x10000000000ff}, TraceId{}, 0.004, 1712345678'000000000};
  Exemplar big{RequestId{3, 4}, TraceId{}, 2'000'000, 1712345679'000000001};
  Exemplar never_written;
  LabelView ok[1] = {{"code", "200"}};
  LabelView odd[1] = {{"code", "4\"04\\\n"}};
  LabelView blob[2] = {{"handler", "blob"}, {"method", "get"}};
  SeriesView requests[2] = {{.labels = ok, .value = 7, .exemplar = &traced},
                            {.labels = odd, .value = 2, .exemplar = &never_written}};
  SeriesView in_flight[1] = {{.value = 3}};
  ClassicBucketView duration_buckets[2] = {{0.005, 1, &untraced}, {1, 3}};
  SeriesView durations[1] = {{.labels = blob, .histogram = {.count = 4, .sum = 2.5, .buckets = duration_buckets}}};
  ClassicBucketView size_buckets[3] = {{1024, 0}, {1048576, 1}, {INFINITY, 2, &big}};
  SeriesView sizes[1] = {{.histogram = {.count = 2, .sum = 2'500'000, .buckets = size_buckets}}};
  NativeHistogram native_histogram;
  NativeBucketsView native;
  SeriesView natives[1];
  SeriesView odd_counter[1] = {{.value = 1.5}};
  FamilyView families[6] = {
      {"regmeter_test_requests_total", "Requests \"by code\", C:\\ and\nmore.", "", FamilyType::counter, requests},
      {"regmeter_test_in_flight", "In flight.", "seconds", FamilyType::gauge, in_flight},  // unit does not match
      {"registry_test_duration_seconds", "Durations.", "seconds", FamilyType::histogram, durations},
      {"regmeter_test_size_bytes", "", "bytes", FamilyType::histogram, sizes},
      {"regmeter_test_native_seconds", "Native only.", "", FamilyType::histogram, natives},
      {"regmeter_test_odd", "A counter named without _total.", "", FamilyType::counter, odd_counter},
  };

  Exposition() {
    for (double v : {0.5, 1.0, 2.0}) native_histogram.observe(v);
    native = native_histogram.view();
    natives[0] = {.histogram = {.count = 3, .sum = 3.5, .native = &native}};
  }
};

TEST(OpenMetricsWriter, LineByLine) {
  Exposition e;
  auto lines = lines_of(render(e.families));
  std::vector<std::string> expected = {
      "# TYPE regmeter_test_requests counter",
      "# HELP regmeter_test_requests Requests \\\"by code\\\", C:\\\\ and\\nmore.",
      "regmeter_test_requests_total{code=\"200\"} 7 # {request_id=\"00000000000000010000000000000002\","
      "trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\"} 0.67 1712345678.123",
      "regmeter_test_requests_total{code=\"4\\\"04\\\\\\n\"} 2",
      "# TYPE regmeter_test_in_flight gauge",
      "# HELP regmeter_test_in_flight In flight.",
      "regmeter_test_in_flight 3",
      "# TYPE registry_test_duration_seconds histogram",
      "# HELP registry_test_duration_seconds Durations.",
      "# UNIT registry_test_duration_seconds seconds",
      "registry_test_duration_seconds_bucket{handler=\"blob\",method=\"get\",le=\"0.005\"} 1 "
      "# {request_id=\"0000000000000abc00010000000000ff\"} 0.004 1712345678",
      "registry_test_duration_seconds_bucket{handler=\"blob\",method=\"get\",le=\"1\"} 3",
      "registry_test_duration_seconds_bucket{handler=\"blob\",method=\"get\",le=\"+Inf\"} 4",
      "registry_test_duration_seconds_count{handler=\"blob\",method=\"get\"} 4",
      "registry_test_duration_seconds_sum{handler=\"blob\",method=\"get\"} 2.5",
      "# TYPE regmeter_test_size_bytes histogram",
      "# UNIT regmeter_test_size_bytes bytes",
      "regmeter_test_size_bytes_bucket{le=\"1024\"} 0",
      "regmeter_test_size_bytes_bucket{le=\"1.048576e+06\"} 1",
      "regmeter_test_size_bytes_bucket{le=\"+Inf\"} 2 # {request_id=\"00000000000000030000000000000004\"} 2e+06 "
      "1712345679.000000001",
      "regmeter_test_size_bytes_count 2",
      "regmeter_test_size_bytes_sum 2.5e+06",
      "# TYPE regmeter_test_native_seconds histogram",
      "# HELP regmeter_test_native_seconds Native only.",
      "regmeter_test_native_seconds_bucket{le=\"+Inf\"} 3",
      "regmeter_test_native_seconds_count 3",
      "regmeter_test_native_seconds_sum 3.5",
      "# TYPE regmeter_test_odd counter",
      "# HELP regmeter_test_odd A counter named without _total.",
      "regmeter_test_odd_total 1.5",
      "# EOF",
  };
  EXPECT_EQ(lines, expected);
}

TEST(OpenMetricsWriter, AStrictParserReadsItBack) {
  Exposition e;
  EXPECT_EQ(parse_independently(render(e.families)),
            "family regmeter_test_requests counter 'Requests \"by code\", C:\\\\ and\\nmore.' ''\n"
            "sample regmeter_test_requests_total {code=200} 7 exemplar "
            "{request_id=00000000000000010000000000000002;trace_id=4bf92f3577b34da6a3ce929d0e0e4736} 0.67 "
            "1712345678.123000000\n"
            "sample regmeter_test_requests_total {code=4\"04\\\n} 2\n"
            "family regmeter_test_in_flight gauge 'In flight.' ''\n"
            "sample regmeter_test_in_flight {} 3\n"
            "family registry_test_duration_seconds histogram 'Durations.' 'seconds'\n"
            "sample registry_test_duration_seconds_bucket {handler=blob;le=0.005;method=get} 1 exemplar "
            "{request_id=0000000000000abc00010000000000ff} 0.004 1712345678.000000000\n"
            "sample registry_test_duration_seconds_bucket {handler=blob;le=1;method=get} 3\n"
            "sample registry_test_duration_seconds_bucket {handler=blob;le=+Inf;method=get} 4\n"
            "sample registry_test_duration_seconds_count {handler=blob;method=get} 4\n"
            "sample registry_test_duration_seconds_sum {handler=blob;method=get} 2.5\n"
            "family regmeter_test_size_bytes histogram '' 'bytes'\n"
            "sample regmeter_test_size_bytes_bucket {le=1024} 0\n"
            "sample regmeter_test_size_bytes_bucket {le=1.048576e+06} 1\n"
            "sample regmeter_test_size_bytes_bucket {le=+Inf} 2 exemplar "
            "{request_id=00000000000000030000000000000004} 2000000.0 1712345679.000000001\n"
            "sample regmeter_test_size_bytes_count {} 2\n"
            "sample regmeter_test_size_bytes_sum {} 2500000.0\n"
            "family regmeter_test_native_seconds histogram 'Native only.' ''\n"
            "sample regmeter_test_native_seconds_bucket {le=+Inf} 3\n"
            "sample regmeter_test_native_seconds_count {} 3\n"
            "sample regmeter_test_native_seconds_sum {} 3.5\n"
            "family regmeter_test_odd counter 'A counter named without _total.' ''\n"
            "sample regmeter_test_odd_total {} 1.5\n");
}

// The parser is not a rubber stamp: it refuses what OpenMetrics forbids.
TEST(OpenMetricsWriter, TheParserRejectsBrokenExpositions) {
  std::string python = test::env("DEBIAN_PYTHON");
  std::string script = test::env("OPENMETRICS_PARSE");
  ASSERT_FALSE(python.empty() || script.empty());
  auto run = [&](const std::string& text) {
    return test::run_tool(test::shell_quote(python) + " " + test::shell_quote(script), text).exit_code;
  };
  EXPECT_EQ(run("# TYPE a counter\na_total 1\n# EOF\n"), 0);
  EXPECT_EQ(run("# TYPE a counter\na_total 1\n"), 1);  // no # EOF
  std::string long_exemplar = "# TYPE a counter\na_total 1 # {request_id=\"" + std::string(120, 'x') + "\"} 1 1\n# EOF\n";
  EXPECT_EQ(run(long_exemplar), 1);  // exemplar labels over 128 characters
  EXPECT_EQ(run("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_count 1\nh_sum 1\n# EOF\n"), 1);  // no +Inf bucket
}

TEST(OpenMetricsWriter, EmptyExpositionIsJustEof) { EXPECT_EQ(render({}), "# EOF\n"); }

TEST(OpenMetricsWriter, SpecialValues) {
  SeriesView series[] = {{.value = NAN}, {.value = INFINITY}, {.value = -INFINITY}, {.value = 1e-7}, {.value = 123456}};
  FamilyView family{"regmeter_test_values", "", "", FamilyType::gauge, series};
  auto lines = lines_of(render({&family, 1}));
  std::vector<std::string> expected = {
      "# TYPE regmeter_test_values gauge", "regmeter_test_values NaN",    "regmeter_test_values +Inf",
      "regmeter_test_values -Inf",         "regmeter_test_values 1e-07", "regmeter_test_values 123456",
      "# EOF",
  };
  EXPECT_EQ(lines, expected);
}

}  // namespace
}  // namespace regmeter
