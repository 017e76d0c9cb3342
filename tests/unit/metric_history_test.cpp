// The dashboard history: ring bounds, per-interval increases, counter
// resets, the column bound, and what dashboard_readings() picks from the
// merged metric families.
#include "core/metric_history.h"

#include <gtest/gtest.h>
#include <prometheus/metric_family.h>
#include <rapidjson/document.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "core/dashboard_readings.h"
#include "core/metrics.h"

namespace regmeter {
namespace {

using Readings = std::vector<MetricReading>;

// The increases of one interval as {"family/label": increase}.
std::map<std::string, double> named(const MetricHistory& h, const MetricHistory::Interval& interval) {
  std::map<std::string, double> out;
  for (const auto& cell : interval.cells) {
    const auto& column = h.columns().at(cell.column);
    out[column.family + "/" + column.label] = cell.increase;
  }
  return out;
}

TEST(MetricHistory, FirstRecordIsOnlyTheBaseline) {
  MetricHistory h(10, 16);
  EXPECT_FALSE(h.has_baseline());
  EXPECT_FALSE(h.peek(1000, {{"requests", "blob", 5}}).has_value());
  h.record(1000, {{"requests", "blob", 5}});
  EXPECT_TRUE(h.has_baseline());
  EXPECT_TRUE(h.intervals().empty());
}

TEST(MetricHistory, StoresIncreasesPerIntervalAndOnlyWhatGrew) {
  MetricHistory h(10, 16);
  h.record(1000, {{"requests", "blob", 5}, {"requests", "manifest", 2}});
  h.record(2000, {{"requests", "blob", 8}, {"requests", "manifest", 2}});
  h.record(3000, {{"requests", "blob", 8}, {"requests", "manifest", 7}});
  ASSERT_EQ(h.intervals().size(), 2u);
  EXPECT_EQ(h.intervals()[0].start_ms, 1000);
  EXPECT_EQ(h.intervals()[0].end_ms, 2000);
  EXPECT_EQ(named(h, h.intervals()[0]), (std::map<std::string, double>{{"requests/blob", 3}}));
  EXPECT_EQ(named(h, h.intervals()[1]), (std::map<std::string, double>{{"requests/manifest", 5}}));
  EXPECT_EQ(h.intervals()[1].start_ms, 2000);
}

TEST(MetricHistory, NewSeriesCountFromZeroButBaselineSeriesDoNot) {
  MetricHistory h(10, 16);
  h.record(0, {{"requests", "blob", 100}});
  h.record(1, {{"requests", "blob", 100}, {"requests", "tags", 4}});
  ASSERT_EQ(h.intervals().size(), 1u);
  EXPECT_EQ(named(h, h.intervals()[0]), (std::map<std::string, double>{{"requests/tags", 4}}));
}

TEST(MetricHistory, MissingSeriesGrewByNothing) {
  MetricHistory h(10, 16);
  h.record(0, {{"requests", "blob", 10}, {"requests", "tags", 4}});
  h.record(1, {{"requests", "tags", 6}});
  h.record(2, {{"requests", "blob", 11}, {"requests", "tags", 6}});
  ASSERT_EQ(h.intervals().size(), 2u);
  EXPECT_EQ(named(h, h.intervals()[0]), (std::map<std::string, double>{{"requests/tags", 2}}));
  EXPECT_EQ(named(h, h.intervals()[1]), (std::map<std::string, double>{{"requests/blob", 1}}));
}

TEST(MetricHistory, ACounterThatWentDownResetsItsWholeFamilyOnly) {
  MetricHistory h(10, 16);
  h.record(0, {{"latency", "0.1", 10}, {"latency", "1", 20}, {"bytes", "upload", 1000}});
  // latency/0.1 went down: the latency family restarted, so latency/1's 25 is
  // all new (not 25 - 20). bytes did not reset.
  h.record(1, {{"latency", "0.1", 3}, {"latency", "1", 25}, {"bytes", "upload", 1500}});
  ASSERT_EQ(h.intervals().size(), 1u);
  EXPECT_EQ(named(h, h.intervals()[0]),
            (std::map<std::string, double>{{"latency/0.1", 3}, {"latency/1", 25}, {"bytes/upload", 500}}));
  // After the reset the new values are the baseline.
  h.record(2, {{"latency", "0.1", 4}, {"latency", "1", 25}, {"bytes", "upload", 1500}});
  EXPECT_EQ(named(h, h.intervals()[1]), (std::map<std::string, double>{{"latency/0.1", 1}}));
}

TEST(MetricHistory, RingKeepsTheNewestCapacityIntervals) {
  MetricHistory h(3, 16);
  for (int t = 0; t <= 10; ++t) h.record(t * 1000, {{"requests", "blob", static_cast<double>(t * t)}});
  ASSERT_EQ(h.intervals().size(), 3u);
  EXPECT_EQ(h.intervals().front().start_ms, 7000);
  EXPECT_EQ(h.intervals().back().end_ms, 10000);
  EXPECT_EQ(h.intervals().back().cells.at(0).increase, 100 - 81);
  EXPECT_EQ(h.intervals().front().cells.at(0).increase, 64 - 49);
}

TEST(MetricHistory, ColumnsAreBoundedAndTheRestCounted) {
  MetricHistory h(4, 2);
  h.record(0, {{"a", "1", 1}, {"a", "2", 1}, {"a", "3", 1}});
  h.record(1, {{"a", "1", 2}, {"a", "2", 2}, {"a", "3", 9}, {"b", "x", 5}});
  EXPECT_EQ(h.columns().size(), 2u);
  EXPECT_EQ(h.ignored_readings(), 3u);
  EXPECT_EQ(named(h, h.intervals()[0]), (std::map<std::string, double>{{"a/1", 1}, {"a/2", 1}}));
}

TEST(MetricHistory, MemoryStaysUnderTheStatedWorstCase) {
  const std::size_t capacity = 720, columns = 128;
  MetricHistory h(capacity, columns);
  for (int t = 0; t < 2000; ++t) {
    Readings r;
    for (std::size_t c = 0; c < columns + 10; ++c) r.push_back({"f", std::to_string(c), static_cast<double>(t)});
    h.record(t, r);
  }
  EXPECT_EQ(h.intervals().size(), capacity);
  EXPECT_EQ(h.intervals().back().cells.size(), columns);
  EXPECT_LE(h.interval_bytes(), MetricHistory::worst_case_bytes(capacity, columns));
  // The figure docs/operations.md states for the defaults (720 intervals, 128 series).
  EXPECT_EQ(MetricHistory::worst_case_bytes(capacity, columns), 720u * (40 + 128 * 16));
}

TEST(MetricHistory, NonFiniteReadingsAreIgnoredAndDuplicatesSummed) {
  MetricHistory h(4, 8);
  h.record(0, {{"a", "1", 1}});
  h.record(1, {{"a", "1", std::numeric_limits<double>::quiet_NaN()}, {"a", "2", 2}, {"a", "2", 3}});
  EXPECT_EQ(named(h, h.intervals()[0]), (std::map<std::string, double>{{"a/2", 5}}));
  h.record(2, {{"a", "1", 4}, {"a", "2", 5}});
  EXPECT_EQ(named(h, h.intervals()[1]), (std::map<std::string, double>{{"a/1", 3}}));
}

TEST(MetricHistory, PeekShowsTheElapsedPartWithoutStoringIt) {
  MetricHistory h(4, 8);
  h.record(1000, {{"a", "1", 1}});
  auto partial = h.peek(1500, {{"a", "1", 4}, {"a", "new", 2}});
  ASSERT_TRUE(partial.has_value());
  EXPECT_EQ(partial->start_ms, 1000);
  EXPECT_EQ(partial->end_ms, 1500);
  EXPECT_EQ(named(h, *partial), (std::map<std::string, double>{{"a/1", 3}, {"a/new", 2}}));
  EXPECT_TRUE(h.intervals().empty());
  // The next record still counts the whole interval, new series from zero.
  h.record(2000, {{"a", "1", 5}, {"a", "new", 2}});
  EXPECT_EQ(named(h, h.intervals()[0]), (std::map<std::string, double>{{"a/1", 4}, {"a/new", 2}}));
}

TEST(MetricHistory, JsonShape) {
  MetricHistory h(2, 8);
  h.record(1000, {{"upload_latency", "+Inf", 0}, {"requests", "say \"hi\"", 1}});
  h.record(2000, {{"upload_latency", "+Inf", 3}, {"requests", "say \"hi\"", 1.5}});
  h.record(3000, {{"upload_latency", "+Inf", 3}, {"requests", "say \"hi\"", 2.5}});
  h.record(4000, {{"upload_latency", "+Inf", 4}, {"requests", "say \"hi\"", 2.5}});
  auto json = h.to_json(5, h.peek(4500, {{"upload_latency", "+Inf", 6}}));
  rapidjson::Document d;
  d.Parse(json.c_str());
  ASSERT_FALSE(d.HasParseError()) << json;
  EXPECT_EQ(d["interval_seconds"].GetDouble(), 5);
  EXPECT_EQ(d["capacity"].GetUint(), 2u);
  EXPECT_EQ(d["max_columns"].GetUint(), 8u);
  EXPECT_EQ(d["ignored_readings"].GetUint(), 0u);
  ASSERT_EQ(d["columns"].Size(), 2u);
  EXPECT_STREQ(d["columns"][1]["label"].GetString(), "say \"hi\"");
  ASSERT_EQ(d["intervals"].Size(), 2u);  // the ring's bound
  const auto& last = d["intervals"][1];
  EXPECT_EQ(last["start"].GetInt64(), 3000);
  EXPECT_EQ(last["end"].GetInt64(), 4000);
  ASSERT_EQ(last["cells"].Size(), 1u);
  EXPECT_EQ(last["cells"][0][0].GetUint(), 0u);
  EXPECT_EQ(last["cells"][0][1].GetDouble(), 1);
  EXPECT_EQ(d["intervals"][0]["cells"][0][1].GetDouble(), 1);  // the 1.5 -> 2.5 step
  ASSERT_TRUE(d["partial"].IsObject());
  EXPECT_EQ(d["partial"]["cells"][0][1].GetDouble(), 2);
  EXPECT_TRUE(rapidjson::Document().Parse(h.to_json(5, std::nullopt).c_str())["partial"].IsNull());
}

TEST(MetricHistory, RejectsAZeroCapacity) { EXPECT_THROW(MetricHistory(0, 8), std::invalid_argument); }

// ---- dashboard_readings over real Metrics

Exchange upload(Method method, int status, double seconds) {
  Exchange e;
  e.handler = Handler::blob_upload_chunk;
  e.method = method;
  e.status = status;
  e.started = Clock::time_point(std::chrono::seconds(1));
  e.finished = e.started + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  e.reached_upstream = true;
  return e;
}

std::map<std::string, double> readings_map(const Metrics& metrics) {
  std::map<std::string, double> out;
  for (const auto& r : dashboard_readings(metrics.collect_http_families())) out[r.family + "/" + r.label] = r.value;
  return out;
}

TEST(DashboardReadings, PicksUploadLatencyPerBucketRequestsErrorsAndSessions) {
  Metrics metrics(2);
  auto record = [&](std::size_t shard, const Exchange& e) {
    metrics.shard(shard).request_started(e.handler);
    metrics.shard(shard).request_finished(e);
  };
  record(0, upload(Method::patch, 202, 0.003));
  record(1, upload(Method::patch, 202, 0.003));
  record(0, upload(Method::put, 201, 0.3));
  record(1, upload(Method::put, 503, 7));
  Exchange blob_get;
  blob_get.handler = Handler::blob;
  blob_get.method = Method::get;
  blob_get.status = 200;
  record(0, blob_get);
  metrics.shard(1).upload_session_closed(SessionOutcome::completed, 4, 100);
  metrics.shard(0).upload_session_closed(SessionOutcome::abandoned, 4000, 100);

  auto r = readings_map(metrics);
  // Per bucket, not cumulative; PATCH and PUT summed over both shards.
  EXPECT_EQ(r["upload_latency/0.005"], 2);
  EXPECT_EQ(r["upload_latency/0.01"], 0);
  EXPECT_EQ(r["upload_latency/0.5"], 1);
  EXPECT_EQ(r["upload_latency/10"], 1);
  EXPECT_EQ(r["upload_latency/+Inf"], 0);
  EXPECT_EQ(r.count("upload_latency/1.048576e+06"), 0u);
  EXPECT_EQ(r["requests/blob_upload_chunk"], 4);
  EXPECT_EQ(r["requests/blob"], 1);
  EXPECT_EQ(r["errors/blob_upload_chunk"], 1);
  EXPECT_EQ(r.count("errors/blob"), 0u);
  EXPECT_EQ(r["sessions/completed"], 1);
  EXPECT_EQ(r["sessions/abandoned"], 1);
  EXPECT_EQ(r["session_duration/5"], 1);
  EXPECT_EQ(r["session_duration/7200"], 1);
  double latency_total = 0;
  for (const auto& [k, v] : r)
    if (k.rfind("upload_latency/", 0) == 0) latency_total += v;
  EXPECT_EQ(latency_total, 4);
}

TEST(DashboardReadings, FeedTheHistoryEndToEnd) {
  Metrics metrics(1);
  MetricHistory h(10, 128);
  h.record(0, dashboard_readings(metrics.collect_http_families()));
  metrics.shard(0).request_started(Handler::blob_upload_chunk);
  metrics.shard(0).request_finished(upload(Method::patch, 202, 0.02));
  h.record(5000, dashboard_readings(metrics.collect_http_families()));
  ASSERT_EQ(h.intervals().size(), 1u);
  auto got = named(h, h.intervals()[0]);
  EXPECT_EQ(got["upload_latency/0.025"], 1);
  EXPECT_EQ(got["requests/blob_upload_chunk"], 1);
  EXPECT_EQ(got.count("errors/blob_upload_chunk"), 0u);
}

}  // namespace
}  // namespace regmeter
