// The protobuf exposition, decoded independently: each delimited
// MetricFamily goes through `protoc --decode` against
// tests/unit/data/metrics.proto (the published data model, written out),
// and the decoded text is compared whole.
#include "core/protobuf_writer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "core/native_histogram.h"
#include "protobuf_decode.h"
#include "run_tool.h"

namespace regmeter {
namespace {

using test::decode;
using test::split_delimited;

// Every message of the stream, decoded.
std::vector<std::string> decode_all(std::span<const FamilyView> families) {
  std::string stream;
  append_protobuf(families, stream);
  std::vector<std::string> decoded;
  for (const auto& message : split_delimited(stream)) decoded.push_back(decode(message));
  return decoded;
}

TraceId spec_trace_id() { return *parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"); }

TEST(ProtobufWriter, CounterWithAndWithoutExemplars) {
  Exemplar traced{RequestId{1, 2}, spec_trace_id(), 0.67, 1712345678'123000000};
  Exemplar never_written;  // an empty slot writes nothing
  LabelView ok[] = {{"code", "200"}};
  LabelView not_found[] = {{"code", "404"}};
  LabelView failed[] = {{"code", "500"}};
  SeriesView series[] = {
      {.labels = ok, .value = 7, .exemplar = &traced},
      {.labels = not_found, .value = 2},
      {.labels = failed, .value = 0, .exemplar = &never_written},
  };
  FamilyView family{"regmeter_test_requests_total", "Requests, by code.", "", FamilyType::counter, series};
  auto decoded = decode_all({&family, 1});
  ASSERT_EQ(decoded.size(), 1u);
  EXPECT_EQ(decoded[0], R"(name: "regmeter_test_requests_total"
help: "Requests, by code."
type: COUNTER
metric {
  label {
    name: "code"
    value: "200"
  }
  counter {
    value: 7
    exemplar {
      label {
        name: "request_id"
        value: "00000000000000010000000000000002"
      }
      label {
        name: "trace_id"
        value: "4bf92f3577b34da6a3ce929d0e0e4736"
      }
      value: 0.67
      timestamp {
        seconds: 1712345678
        nanos: 123000000
      }
    }
  }
}
metric {
  label {
    name: "code"
    value: "404"
  }
  counter {
    value: 2
  }
}
metric {
  label {
    name: "code"
    value: "500"
  }
  counter {
    value: 0
  }
}
)");
}

TEST(ProtobufWriter, GaugeWithoutLabelsAndFamiliesInOrder) {
  SeriesView in_flight[] = {{.value = 3}};
  SeriesView ratio[] = {{.value = -0.5}};
  FamilyView families[] = {
      {"regmeter_test_in_flight", "In flight.", "", FamilyType::gauge, in_flight},
      {"regmeter_test_ratio", "", "", FamilyType::gauge, ratio},
  };
  auto decoded = decode_all(families);
  ASSERT_EQ(decoded.size(), 2u);
  EXPECT_EQ(decoded[0], R"(name: "regmeter_test_in_flight"
help: "In flight."
type: GAUGE
metric {
  gauge {
    value: 3
  }
}
)");
  EXPECT_EQ(decoded[1], R"(name: "regmeter_test_ratio"
type: GAUGE
metric {
  gauge {
    value: -0.5
  }
}
)");
}

TEST(ProtobufWriter, ClassicHistogramWithABucketExemplar) {
  Exemplar fast{RequestId{0xabc, 0x10000000000ff}, TraceId{}, 0.042, 1712345678'000000000};
  ClassicBucketView buckets[] = {{0.1, 1, &fast}, {1, 3}, {INFINITY, 4}};
  LabelView blob[] = {{"handler", "blob"}};
  SeriesView series[] = {{.labels = blob, .histogram = {.count = 4, .sum = 1.5, .buckets = buckets}}};
  FamilyView family{"registry_test_duration_seconds", "Durations.", "", FamilyType::histogram, series};
  auto decoded = decode_all({&family, 1});
  ASSERT_EQ(decoded.size(), 1u);
  EXPECT_EQ(decoded[0], R"(name: "registry_test_duration_seconds"
help: "Durations."
type: HISTOGRAM
metric {
  label {
    name: "handler"
    value: "blob"
  }
  histogram {
    sample_count: 4
    sample_sum: 1.5
    bucket {
      cumulative_count: 1
      upper_bound: 0.1
      exemplar {
        label {
          name: "request_id"
          value: "0000000000000abc00010000000000ff"
        }
        value: 0.042
        timestamp {
          seconds: 1712345678
          nanos: 0
        }
      }
    }
    bucket {
      cumulative_count: 3
      upper_bound: 1
    }
    bucket {
      cumulative_count: 4
      upper_bound: inf
    }
  }
}
)");
}

TEST(ProtobufWriter, NativeHistogramSpansAndDeltas) {
  NativeHistogram h;
  // Buckets -63 (0.004), 0 (1.0 twice), 1 (1.05), 3 (1.25), 10 (2.25), and
  // one zero: spans [-63], [0..3] with one empty bucket inside, [10].
  for (double v : {0.0, 0.004, 1.0, 1.0, 1.05, 1.25, 2.25}) h.observe(v);
  NativeBucketsView native = h.view();
  ASSERT_EQ(native.first_index, -63);
  NativeHistogram untouched;
  NativeBucketsView empty = untouched.view();
  LabelView blob[] = {{"handler", "blob"}};
  LabelView tags[] = {{"handler", "tags"}};
  SeriesView series[] = {
      {.labels = blob, .histogram = {.count = h.count(), .sum = 6.5, .native = &native}},
      {.labels = tags, .histogram = {.count = 0, .sum = 0, .native = &empty}},
  };
  FamilyView family{"regmeter_test_native_seconds", "Native.", "", FamilyType::histogram, series};
  auto decoded = decode_all({&family, 1});
  ASSERT_EQ(decoded.size(), 1u);
  EXPECT_EQ(decoded[0], R"(name: "regmeter_test_native_seconds"
help: "Native."
type: HISTOGRAM
metric {
  label {
    name: "handler"
    value: "blob"
  }
  histogram {
    sample_count: 7
    sample_sum: 6.5
    schema: 3
    zero_threshold: 2.9387358770557188e-39
    zero_count: 1
    positive_span {
      offset: -63
      length: 1
    }
    positive_span {
      offset: 62
      length: 4
    }
    positive_span {
      offset: 6
      length: 1
    }
    positive_delta: 1
    positive_delta: 1
    positive_delta: -1
    positive_delta: -1
    positive_delta: 1
    positive_delta: 0
  }
}
metric {
  label {
    name: "handler"
    value: "tags"
  }
  histogram {
    sample_count: 0
    sample_sum: 0
    schema: 3
    zero_threshold: 2.9387358770557188e-39
    zero_count: 0
    positive_span {
      offset: 0
      length: 0
    }
  }
}
)");
}

TEST(ProtobufWriter, ClassicAndNativeOnOneSeries) {
  NativeHistogram h;
  for (double v : {0.5, 1.0, 1.0}) h.observe(v);
  NativeBucketsView native = h.view();
  Exemplar slow{RequestId{7, 8}, spec_trace_id(), 1.0, 1712345679'500000000};
  ClassicBucketView buckets[] = {{1, 3, &slow}};  // +Inf left to sample_count
  SeriesView series[] = {{.histogram = {.count = 3, .sum = 2.5, .buckets = buckets, .native = &native}}};
  FamilyView family{"regmeter_test_upload_seconds", "Uploads.", "seconds", FamilyType::histogram, series};
  auto decoded = decode_all({&family, 1});
  ASSERT_EQ(decoded.size(), 1u);
  EXPECT_EQ(decoded[0], R"(name: "regmeter_test_upload_seconds"
help: "Uploads."
type: HISTOGRAM
metric {
  histogram {
    sample_count: 3
    sample_sum: 2.5
    bucket {
      cumulative_count: 3
      upper_bound: 1
      exemplar {
        label {
          name: "request_id"
          value: "00000000000000070000000000000008"
        }
        label {
          name: "trace_id"
          value: "4bf92f3577b34da6a3ce929d0e0e4736"
        }
        value: 1
        timestamp {
          seconds: 1712345679
          nanos: 500000000
        }
      }
    }
    schema: 3
    zero_threshold: 2.9387358770557188e-39
    zero_count: 0
    positive_span {
      offset: -8
      length: 1
    }
    positive_span {
      offset: 7
      length: 1
    }
    positive_delta: 1
    positive_delta: 1
  }
}
)");
}

TEST(ProtobufWriter, ReducedSchemaAndLargeCounts) {
  NativeHistogram h({.max_buckets = 21});
  h.observe(0x1p-5);  // bucket -40 at schema 3
  h.observe(0x1p5);   // bucket 40: 81 wide, down to schema 1: buckets -10 and 10
  NativeBucketsView native = h.view();
  ASSERT_EQ(native.schema, 1);
  std::vector<std::uint64_t> counts = {5'000'000'000, 1};  // a delta beyond 32 bits, then a large negative one
  NativeBucketsView big{.schema = 1, .zero_threshold = 1e-9, .zero_count = 0, .first_index = 2, .counts = counts};
  SeriesView series[] = {{.histogram = {.count = 2, .sum = 32.03125, .native = &native}},
                         {.histogram = {.count = 5'000'000'001, .sum = 1e10, .native = &big}}};
  FamilyView family{"regmeter_test_wide", "", "", FamilyType::histogram, series};
  auto decoded = decode_all({&family, 1});
  ASSERT_EQ(decoded.size(), 1u);
  EXPECT_EQ(decoded[0], R"(name: "regmeter_test_wide"
type: HISTOGRAM
metric {
  histogram {
    sample_count: 2
    sample_sum: 32.03125
    schema: 1
    zero_threshold: 2.9387358770557188e-39
    zero_count: 0
    positive_span {
      offset: -10
      length: 1
    }
    positive_span {
      offset: 19
      length: 1
    }
    positive_delta: 1
    positive_delta: 0
  }
}
metric {
  histogram {
    sample_count: 5000000001
    sample_sum: 10000000000
    schema: 1
    zero_threshold: 1e-09
    zero_count: 0
    positive_span {
      offset: 2
      length: 2
    }
    positive_delta: 5000000000
    positive_delta: -4999999999
  }
}
)");
}

TEST(ProtobufWriter, LongMessagesGetMultiByteLengths) {
  // 2000 series: the family is over 16 KiB (a 3-byte length), each metric
  // with its long label value over 128 bytes (2 bytes).
  std::string long_value(150, 'r');
  std::vector<std::array<LabelView, 2>> labels(2000);
  std::vector<std::string> index(2000);
  std::vector<SeriesView> series(2000);
  for (std::size_t i = 0; i < series.size(); ++i) {
    index[i] = std::to_string(i);
    labels[i] = {LabelView{"repository", long_value}, LabelView{"index", index[i]}};
    series[i] = SeriesView{.labels = labels[i], .value = static_cast<double>(i)};
  }
  FamilyView family{"regmeter_test_many", "Many.", "", FamilyType::gauge, series};
  std::string stream;
  append_protobuf({&family, 1}, stream);
  ASSERT_GT(stream.size(), 300'000u);
  EXPECT_EQ(static_cast<unsigned char>(stream[0]) & 0x80, 0x80);
  EXPECT_EQ(static_cast<unsigned char>(stream[1]) & 0x80, 0x80);
  EXPECT_EQ(static_cast<unsigned char>(stream[2]) & 0x80, 0);
  auto messages = split_delimited(stream);
  ASSERT_EQ(messages.size(), 1u);
  std::string text = decode(messages[0]);
  std::size_t metrics = 0;
  for (std::size_t pos = 0; (pos = text.find("\nmetric {", pos)) != std::string::npos; ++pos) ++metrics;
  EXPECT_EQ(metrics, 2000u);
  EXPECT_NE(text.find("    name: \"index\"\n    value: \"1999\"\n  }\n  gauge {\n    value: 1999\n  }\n"),
            std::string::npos);
  EXPECT_EQ(text.find("timestamp_ms"), std::string::npos);
}

TEST(ProtobufWriter, NoFamiliesNoBytes) {
  std::string stream;
  append_protobuf({}, stream);
  EXPECT_TRUE(stream.empty());
}

}  // namespace
}  // namespace regmeter
