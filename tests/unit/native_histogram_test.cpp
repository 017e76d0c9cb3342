#include "core/native_histogram.h"

#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

namespace regmeter {
namespace {

// The bucket boundary 2^(k / 2^schema), in long double (64-bit mantissa:
// 11 bits more than a double, enough to tell a double from the boundary).
long double boundary(std::int64_t k, int schema) { return std::exp2l(std::ldexp(static_cast<long double>(k), -schema)); }

// The index by the definition, (2^((k-1)/2^s), 2^(k/2^s)], in long double.
std::int32_t expected_index(double v, int schema) {
  auto k = static_cast<std::int64_t>(std::ceil(std::log2l(static_cast<long double>(v)) * std::ldexp(1.0L, schema)));
  while (static_cast<long double>(v) > boundary(k, schema)) ++k;
  while (static_cast<long double>(v) <= boundary(k - 1, schema)) --k;
  return static_cast<std::int32_t>(k);
}

// The largest double <= 2^(k/2^schema): the last value inside bucket k.
double last_double_in_bucket(std::int64_t k, int schema) {
  long double b = boundary(k, schema);
  auto d = static_cast<double>(b);
  if (static_cast<long double>(d) > b) d = std::nextafter(d, 0.0);
  return d;
}

TEST(NativeBucketIndex, TableHoldsTheLargestDoubleAtOrBelowEachBound) {
  for (int j = 0; j < 8; ++j) {
    double bound = 1.0 + std::ldexp(static_cast<double>(native_detail::kBoundMantissa[j]), -52);
    long double exact = std::exp2l(j / 8.0L);
    EXPECT_LE(static_cast<long double>(bound), exact) << j;
    EXPECT_GT(static_cast<long double>(std::nextafter(bound, 2.0)), exact) << j;
  }
}

TEST(NativeBucketIndex, PowersOfTwoAreUpperBoundsInclusive) {
  EXPECT_EQ(native_bucket_index(1.0, 3), 0);
  EXPECT_EQ(native_bucket_index(2.0, 3), 8);
  EXPECT_EQ(native_bucket_index(0.5, 3), -8);
  EXPECT_EQ(native_bucket_index(0x1p-10, 3), -80);
  EXPECT_EQ(native_bucket_index(0x1p20, 3), 160);
  EXPECT_EQ(native_bucket_index(std::nextafter(1.0, 2.0), 3), 1);
  EXPECT_EQ(native_bucket_index(std::nextafter(1.0, 0.0), 3), 0);  // 1 - 2^-53 > 2^(-1/8)
  EXPECT_EQ(native_bucket_index(std::nextafter(2.0, 0.0), 3), 8);
  EXPECT_EQ(native_bucket_index(std::nextafter(2.0, 4.0), 3), 9);
  // Schema 0: bucket k is (2^(k-1), 2^k]; schema -4: (2^(16(k-1)), 2^(16k)].
  EXPECT_EQ(native_bucket_index(1.0, 0), 0);
  EXPECT_EQ(native_bucket_index(std::nextafter(1.0, 2.0), 0), 1);
  EXPECT_EQ(native_bucket_index(2.0, 0), 1);
  EXPECT_EQ(native_bucket_index(3.0, 0), 2);
  EXPECT_EQ(native_bucket_index(0x1p16, -4), 1);
  EXPECT_EQ(native_bucket_index(std::nextafter(0x1p16, 1e300), -4), 2);
  EXPECT_EQ(native_bucket_index(0x1p-16, -4), -1);
  EXPECT_EQ(native_bucket_index(std::nextafter(0x1p-16, 1.0), -4), 0);
  EXPECT_EQ(native_bucket_index(DBL_MAX, 3), 8192);
}

TEST(NativeBucketIndex, EveryBoundaryOfTheBaseAtEverySchema) {
  for (int schema = kNativeMinSchema; schema <= kNativeMaxSchema; ++schema) {
    int per_octave = schema >= 0 ? 1 << schema : 1;
    // Boundaries over 2^-100 .. 2^100 at this schema.
    std::int64_t lowest = schema >= 0 ? -100 * per_octave : -100 >> -schema;
    std::int64_t highest = -lowest;
    for (std::int64_t k = lowest; k <= highest; ++k) {
      double last = last_double_in_bucket(k, schema);
      ASSERT_EQ(native_bucket_index(last, schema), k) << "schema " << schema << " k " << k << " v " << last;
      ASSERT_EQ(native_bucket_index(std::nextafter(last, INFINITY), schema), k + 1)
          << "schema " << schema << " k " << k;
    }
  }
}

TEST(NativeBucketIndex, MatchesTheDefinitionOnRandomValues) {
  std::mt19937_64 random(17);
  std::uniform_real_distribution<double> log2_value(-126.0, 126.0);
  for (int i = 0; i < 200000; ++i) {
    double v = std::exp2(log2_value(random));
    int schema = kNativeMinSchema + static_cast<int>(random() % 8);
    ASSERT_EQ(native_bucket_index(v, schema), expected_index(v, schema)) << v << " at schema " << schema;
  }
  // Durations in seconds from whole nanoseconds, as the proxy records them.
  for (std::int64_t ns = 1; ns < 20'000'000'000; ns = ns * 3 / 2 + 1) {
    double v = static_cast<double>(ns) / 1e9;
    ASSERT_EQ(native_bucket_index(v, 3), expected_index(v, 3)) << ns;
  }
}

TEST(CoarserIndex, IsTheBucketThatContainsIt) {
  // Schema 3 bucket k lies in schema 2 bucket ceil(k / 2).
  EXPECT_EQ(coarser_index(0, 1), 0);
  EXPECT_EQ(coarser_index(1, 1), 1);
  EXPECT_EQ(coarser_index(2, 1), 1);
  EXPECT_EQ(coarser_index(3, 1), 2);
  EXPECT_EQ(coarser_index(-1, 1), 0);
  EXPECT_EQ(coarser_index(-2, 1), -1);
  EXPECT_EQ(coarser_index(-3, 1), -1);
  EXPECT_EQ(coarser_index(-8, 3), -1);
  EXPECT_EQ(coarser_index(-9, 3), -1);
  EXPECT_EQ(coarser_index(-16, 3), -2);
  for (std::int32_t k = -300; k <= 300; ++k)
    for (int shift = 1; shift <= 7; ++shift)
      ASSERT_EQ(coarser_index(k, shift), native_bucket_index(last_double_in_bucket(k, 3), 3 - shift)) << k << " " << shift;
}

std::uint64_t bucket_total(const NativeHistogram& h) {
  std::uint64_t total = 0;
  for (auto c : h.view().counts) total += c;
  return total;
}

TEST(NativeHistogram, CountsSumAndBuckets) {
  NativeHistogram h;
  for (double v : {0.004, 0.004, 0.25, 1.0, 1.0, 1.0, 3.5}) h.observe(v);
  EXPECT_EQ(h.count(), 7u);
  EXPECT_DOUBLE_EQ(h.sum(), 0.004 * 2 + 0.25 + 3 + 3.5);
  EXPECT_EQ(h.schema(), 3);
  EXPECT_EQ(h.bucket(native_bucket_index(0.004, 3)), 2u);
  EXPECT_EQ(h.bucket(-16), 1u);  // 0.25 = 2^-2 ends bucket -16
  EXPECT_EQ(h.bucket(0), 3u);
  EXPECT_EQ(h.bucket(expected_index(3.5, 3)), 1u);
  EXPECT_EQ(h.zero_count(), 0u);
  NativeBucketsView v = h.view();
  EXPECT_EQ(v.first_index, native_bucket_index(0.004, 3));
  EXPECT_EQ(v.first_index + static_cast<std::int32_t>(v.counts.size()) - 1, expected_index(3.5, 3));
  EXPECT_NE(v.counts.front(), 0u);
  EXPECT_NE(v.counts.back(), 0u);
  EXPECT_EQ(bucket_total(h), 7u);
}

TEST(NativeHistogram, ZeroBucketTakesZeroNegativesAndTheThreshold) {
  NativeHistogram h;
  h.observe(0.0);
  h.observe(-0.0);
  h.observe(-1.5);
  h.observe(-INFINITY);
  h.observe(kDefaultZeroThreshold);
  EXPECT_EQ(h.zero_count(), 5u);
  EXPECT_EQ(h.count(), 5u);
  EXPECT_TRUE(h.view().counts.empty());
  h.observe(std::nextafter(kDefaultZeroThreshold, 1.0));
  EXPECT_EQ(h.zero_count(), 5u);
  EXPECT_EQ(h.view().first_index, -1024 + 1);
}

TEST(NativeHistogram, PerFamilyZeroThreshold) {
  NativeHistogram h({.zero_threshold = 1e-6});
  h.observe(1e-6);
  h.observe(5e-7);
  h.observe(2e-6);
  EXPECT_EQ(h.zero_count(), 2u);
  EXPECT_EQ(bucket_total(h), 1u);
  // Below DBL_MIN indices would come from subnormals: raised to DBL_MIN.
  EXPECT_EQ(NativeHistogram({.zero_threshold = 0}).zero_threshold(), DBL_MIN);
}

TEST(NativeHistogram, NaNAndInfinityCountButLandInNoBucket) {
  NativeHistogram h;
  h.observe(1.0);
  h.observe(std::numeric_limits<double>::quiet_NaN());
  h.observe(INFINITY);
  EXPECT_EQ(h.count(), 3u);
  EXPECT_TRUE(std::isnan(h.sum()));
  EXPECT_EQ(h.zero_count(), 0u);
  EXPECT_EQ(bucket_total(h), 1u);
  EXPECT_EQ(h.schema(), 3);  // +Inf did not widen the window
}

TEST(NativeHistogram, ExceedingTheCapHalvesTheResolution) {
  NativeHistogram h;  // 160 buckets
  h.observe(0x1p-10);   // bucket -80
  h.observe(0x1p10);    // bucket 80: 161 buckets wide at schema 3
  EXPECT_EQ(h.schema(), 2);
  EXPECT_EQ(h.bucket(-40), 1u);
  EXPECT_EQ(h.bucket(40), 1u);
  EXPECT_EQ(h.count(), 2u);
  h.observe(1.5);  // recorded at schema 2 from now on
  EXPECT_EQ(h.bucket(expected_index(1.5, 2)), 1u);
  EXPECT_LE(h.window_size(), 160u);
}

TEST(NativeHistogram, MergingPairsKeepsEveryCount) {
  NativeHistogram fine;
  NativeHistogram reduced({.max_buckets = 40});
  std::mt19937_64 random(3);
  std::lognormal_distribution<double> seconds(-3.0, 1.0);
  std::vector<double> values(5000);
  for (auto& v : values) v = seconds(random);
  for (double v : values) {
    fine.observe(v);
    reduced.observe(v);
  }
  EXPECT_EQ(fine.schema(), 3);
  ASSERT_LT(reduced.schema(), 3);
  EXPECT_LE(reduced.view().counts.size(), 40u);
  EXPECT_EQ(bucket_total(reduced), values.size());
  // Each value is in the bucket the definition gives at the final schema,
  // whether it was observed before or after the resolution dropped.
  NativeHistogram expected_counts({.schema = reduced.schema(), .max_buckets = 1000});
  for (double v : values) expected_counts.observe(v);
  for (std::int32_t k = -200; k <= 200; ++k) ASSERT_EQ(reduced.bucket(k), expected_counts.bucket(k)) << k;
}

TEST(NativeHistogram, SlackAroundTheWindowCostsNoResolution) {
  NativeHistogram h;
  // 160 consecutive buckets, observed from the middle outwards and upwards.
  for (std::int32_t k = 80; k < 160; ++k) h.observe(last_double_in_bucket(k, 3));
  for (std::int32_t k = 79; k >= 0; --k) h.observe(last_double_in_bucket(k, 3));
  EXPECT_EQ(h.schema(), 3);
  EXPECT_EQ(h.view().counts.size(), 160u);
  EXPECT_EQ(h.view().first_index, 0);
  h.observe(last_double_in_bucket(160, 3));
  EXPECT_EQ(h.schema(), 2);
}

TEST(NativeHistogram, MemoryStaysBoundedOverTheWholeDoubleRange) {
  NativeHistogram h({.max_buckets = 20});
  for (double v = std::nextafter(kDefaultZeroThreshold, 1.0); v < 1e308; v *= 1.7) h.observe(v);
  h.observe(DBL_MAX);
  EXPECT_EQ(h.schema(), kNativeMinSchema);
  EXPECT_LE(h.window_size(), 72u);  // every double above 2^-128: buckets -7 .. 64 at schema -4
  EXPECT_EQ(bucket_total(h), h.count());
}

TEST(NativeHistogram, MergeOfShardsAtDifferentSchemas) {
  std::mt19937_64 random(11);
  std::lognormal_distribution<double> fast(-5.0, 1.0);
  std::vector<double> a_values(3000), b_values(3000);
  for (auto& v : a_values) v = fast(random);
  for (auto& v : b_values) v = fast(random);
  b_values.push_back(1e-9);  // forces shard b to a coarser schema
  b_values.push_back(3600.0);

  NativeHistogram a, b, all;
  for (double v : a_values) a.observe(v);
  for (double v : b_values) b.observe(v);
  for (double v : a_values) all.observe(v);
  for (double v : b_values) all.observe(v);
  ASSERT_EQ(a.schema(), 3);
  ASSERT_LT(b.schema(), 3);

  NativeHistogram ab = a;
  ab.merge(b);
  NativeHistogram ba = b;
  ba.merge(a);
  for (const NativeHistogram* merged : {&ab, &ba}) {
    EXPECT_EQ(merged->schema(), all.schema());
    EXPECT_EQ(merged->count(), all.count());
    EXPECT_EQ(merged->zero_count(), all.zero_count());
    EXPECT_DOUBLE_EQ(merged->sum(), all.sum());
    for (std::int32_t k = -300; k <= 300; ++k) ASSERT_EQ(merged->bucket(k), all.bucket(k)) << k;
  }
}

TEST(NativeHistogram, MergeWhoseUnionExceedsTheCapReducesFurther) {
  NativeHistogram low, high;
  low.observe(0x1p-10);  // bucket -80
  high.observe(0x1p10);  // bucket 80
  low.merge(high);
  EXPECT_EQ(low.schema(), 2);
  EXPECT_EQ(low.bucket(-40), 1u);
  EXPECT_EQ(low.bucket(40), 1u);
}

TEST(NativeHistogram, MergeIntoEmptyAndOfEmpty) {
  NativeHistogram empty, h;
  h.observe(0.5);
  h.observe(0.0);
  NativeHistogram copy = empty;
  copy.merge(h);
  EXPECT_EQ(copy.count(), 2u);
  EXPECT_EQ(copy.zero_count(), 1u);
  EXPECT_EQ(copy.bucket(-8), 1u);
  h.merge(empty);
  EXPECT_EQ(h.count(), 2u);
  EXPECT_EQ(h.bucket(-8), 1u);
}

TEST(NativeHistogram, MergeWithItselfDoubles) {
  NativeHistogram h({.max_buckets = 10});
  for (double v : {0.001, 0.01, 0.1, 1.0, 10.0}) h.observe(v);
  NativeHistogram twice = h;
  twice.merge(h);
  h.merge(h);
  EXPECT_EQ(h.count(), 10u);
  EXPECT_EQ(h.schema(), twice.schema());
  for (std::int32_t k = -100; k <= 100; ++k) ASSERT_EQ(h.bucket(k), twice.bucket(k)) << k;
}

TEST(NativeHistogram, MergeRefusesADifferentZeroThreshold) {
  NativeHistogram a, b({.zero_threshold = 1e-3});
  EXPECT_THROW(a.merge(b), std::invalid_argument);
}

}  // namespace
}  // namespace regmeter
