#include "core/pull_sessions.h"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>
#include <vector>

#include "metering_test_util.h"

namespace regmeter {

void PrintTo(PullOutcome outcome, std::ostream* out) { *out << pull_outcome_name(outcome); }

namespace {

using namespace std::chrono_literals;
using testing::fake_digest;

const PullTime t0 = PullTime{} + 1000s;

Manifest image(const std::vector<std::pair<std::string, std::uint64_t>>& blobs) {
  Manifest m;
  m.kind = ManifestKind::image;
  m.config = BlobReference{*Digest::parse(blobs.at(0).first), blobs.at(0).second};
  for (std::size_t i = 1; i < blobs.size(); ++i)
    m.layers.push_back(BlobReference{*Digest::parse(blobs[i].first), blobs[i].second});
  return m;
}

Manifest index(const std::vector<std::string>& children) {
  Manifest m;
  m.kind = ManifestKind::index;
  for (const auto& child : children) m.manifests.push_back(ChildManifest{*Digest::parse(child), 500, ManifestKind::image, {}});
  return m;
}

// One client pulling one repository, with readable helpers for its requests.
struct Client {
  PullSessions& table;
  PullKey key{"10.0.0.7", "containerd/1.6.20~ds1", "team/app"};

  std::vector<EndedPull> manifest(std::string_view reference, std::string_view content_digest, const Manifest& m,
                                  PullTime start, PullTime end) {
    return table.on_manifest(key, reference, content_digest, m, start, end);
  }
  std::optional<EndedPull> get(std::string_view digest, int status, std::uint64_t bytes, PullTime end) {
    return table.on_blob(key, digest, BlobRequest::get, status, bytes, end - 1ms, end);
  }
};

const std::string kConfig = fake_digest(1), kL1 = fake_digest(2), kL2 = fake_digest(3), kL3 = fake_digest(4);
const std::string kRoot = fake_digest(10), kChildAmd64 = fake_digest(11), kChildArm64 = fake_digest(12),
                  kAttestation = fake_digest(13);

double seconds(PullClock::duration d) { return std::chrono::duration<double>(d).count(); }

TEST(PullSessions, ImagePullCompletesWhenEveryBlobArrived) {
  PullSessions table;
  Client c{table};
  EXPECT_TRUE(c.manifest("1.0", kRoot, image({{kConfig, 100}, {kL1, 1000}, {kL2, 2000}}), t0, t0 + 5ms).empty());
  EXPECT_EQ(table.size(), 1u);
  EXPECT_FALSE(c.get(kConfig, 200, 100, t0 + 10ms));
  EXPECT_FALSE(c.get(kL2, 200, 2000, t0 + 30ms));  // any order
  auto ended = c.get(kL1, 200, 1000, t0 + 40ms);
  ASSERT_TRUE(ended);
  EXPECT_EQ(ended->outcome, PullOutcome::complete);
  EXPECT_DOUBLE_EQ(ended->seconds, seconds(40ms));  // first manifest request's start → last blob byte
  EXPECT_EQ(ended->bytes, 3100u);
  EXPECT_EQ(ended->blobs_listed, 3u);
  EXPECT_EQ(ended->blobs_fetched, 3u);
  EXPECT_EQ(ended->blobs_redirected, 0u);
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(table.tracked_items(), 0u);
}

TEST(PullSessions, IndexPullFollowsTheChildTheClientFetches) {
  PullSessions table;
  Client c{table};
  c.manifest("latest", kRoot, index({kChildAmd64, kChildArm64, kAttestation}), t0, t0 + 2ms);
  // The platform manifest, by digest (no Docker-Content-Digest needed).
  EXPECT_TRUE(c.manifest(kChildAmd64, "", image({{kConfig, 10}, {kL1, 20}}), t0 + 3ms, t0 + 4ms).empty());
  EXPECT_EQ(table.size(), 1u);  // joined, not a second pull
  EXPECT_FALSE(c.get(kConfig, 200, 10, t0 + 6ms));
  auto ended = c.get(kL1, 200, 20, t0 + 9ms);
  ASSERT_TRUE(ended);
  EXPECT_EQ(ended->outcome, PullOutcome::complete);
  EXPECT_DOUBLE_EQ(ended->seconds, seconds(9ms));
  EXPECT_EQ(ended->bytes, 30u);
  EXPECT_EQ(ended->blobs_listed, 2u);  // the other platforms' blobs were never listed
}

TEST(PullSessions, TheRootAgainByDigestJoinsItsPull) {
  PullSessions table;
  Client c{table};
  auto m = image({{kConfig, 10}, {kL1, 20}});
  c.manifest("latest", kRoot, m, t0, t0 + 1ms);  // GET by tag, answered with Docker-Content-Digest
  c.manifest(kRoot, kRoot, m, t0 + 2ms, t0 + 3ms);
  EXPECT_EQ(table.size(), 1u);
  c.get(kConfig, 200, 10, t0 + 4ms);
  auto ended = c.get(kL1, 200, 20, t0 + 5ms);
  ASSERT_TRUE(ended);
  EXPECT_DOUBLE_EQ(ended->seconds, seconds(5ms));
}

TEST(PullSessions, AClientWithTheBlobsCachedEndsPartialAfterIdle) {
  PullSessions table({.max_sessions = 100, .idle = 10s});
  Client c{table};
  c.manifest("1.0", kRoot, image({{kConfig, 10}, {kL1, 20}}), t0, t0 + 4ms);
  EXPECT_TRUE(table.expire(t0 + 4ms + 9s).empty());
  auto ended = table.expire(t0 + 4ms + 10s);
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0].outcome, PullOutcome::partial);
  EXPECT_DOUBLE_EQ(ended[0].seconds, seconds(4ms));
  EXPECT_EQ(ended[0].bytes, 0u);
  EXPECT_EQ(ended[0].blobs_fetched, 0u);
  EXPECT_EQ(table.size(), 0u);
}

TEST(PullSessions, SomeBlobsCachedEndsPartialWithWhatCame) {
  PullSessions table;
  Client c{table};
  c.manifest("1.0", kRoot, image({{kConfig, 10}, {kL1, 20}, {kL2, 30}}), t0, t0 + 1ms);
  c.get(kL2, 200, 30, t0 + 7s);  // activity moves the idle deadline
  EXPECT_TRUE(table.expire(t0 + 1ms + 10s).empty());
  auto ended = table.expire(t0 + 17s);
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0].outcome, PullOutcome::partial);
  EXPECT_DOUBLE_EQ(ended[0].seconds, seconds(7s));
  EXPECT_EQ(ended[0].bytes, 30u);
  EXPECT_EQ(ended[0].blobs_fetched, 1u);
}

TEST(PullSessions, RedirectedBlobs) {
  PullSessions table;
  {
    Client c{table};
    c.manifest("1.0", kRoot, image({{kConfig, 10}, {kL1, 20}}), t0, t0 + 1ms);
    EXPECT_FALSE(c.get(kConfig, 307, 0, t0 + 2ms));
    auto ended = c.get(kL1, 307, 0, t0 + 3ms);
    ASSERT_TRUE(ended);
    EXPECT_EQ(ended->outcome, PullOutcome::redirected);
    EXPECT_DOUBLE_EQ(ended->seconds, seconds(3ms));  // manifest and redirects only
    EXPECT_EQ(ended->bytes, 0u);
    EXPECT_EQ(ended->blobs_redirected, 2u);
  }
  {
    // Small blobs served, large ones redirected: the numbers miss the
    // redirected bytes, so the pull is `redirected` too.
    Client c{table};
    c.manifest("1.0", kRoot, image({{kConfig, 10}, {kL1, 20}}), t0, t0 + 1ms);
    c.get(kConfig, 200, 10, t0 + 2ms);
    auto ended = c.get(kL1, 302, 0, t0 + 3ms);
    ASSERT_TRUE(ended);
    EXPECT_EQ(ended->outcome, PullOutcome::redirected);
    EXPECT_EQ(ended->bytes, 10u);
  }
  {
    // Redirected, then idle with a blob missing.
    Client c{table};
    c.manifest("1.0", kRoot, image({{kConfig, 10}, {kL1, 20}}), t0, t0 + 1ms);
    c.get(kConfig, 308, 0, t0 + 2ms);
    auto ended = table.expire(t0 + 1h);
    ASSERT_EQ(ended.size(), 1u);
    EXPECT_EQ(ended[0].outcome, PullOutcome::redirected);
  }
}

TEST(PullSessions, RangeRequestsAddUpToTheBlob) {
  PullSessions table;
  Client c{table};
  c.manifest("1.0", kRoot, image({{kConfig, 10}, {kL1, 1000}}), t0, t0 + 1ms);
  c.get(kConfig, 200, 10, t0 + 2ms);
  // containerd's parallel fetch: four 206 answers of 250 bytes.
  EXPECT_FALSE(c.get(kL1, 206, 250, t0 + 5ms));
  EXPECT_FALSE(c.get(kL1, 206, 250, t0 + 6ms));
  EXPECT_FALSE(c.get(kL1, 206, 250, t0 + 7ms));
  auto ended = c.get(kL1, 206, 250, t0 + 8ms);
  ASSERT_TRUE(ended);
  EXPECT_EQ(ended->outcome, PullOutcome::complete);
  EXPECT_EQ(ended->bytes, 1010u);
}

TEST(PullSessions, ATruncatedAnswerDoesNotCompleteABlob) {
  PullSessions table;
  Client c{table};
  c.manifest("1.0", kRoot, image({{kConfig, 10}, {kL1, 1000}}), t0, t0 + 1ms);
  c.get(kConfig, 200, 10, t0 + 2ms);
  EXPECT_FALSE(c.get(kL1, 200, 400, t0 + 3ms));  // the client went away mid-body
  auto ended = c.get(kL1, 200, 1000, t0 + 9ms);  // and fetched it again
  ASSERT_TRUE(ended);
  EXPECT_EQ(ended->bytes, 1410u);  // bytes delivered, both attempts
}

TEST(PullSessions, HeadAndOtherStatusesNeverCompleteABlob) {
  PullSessions table;
  Client c{table};
  c.manifest("1.0", kRoot, image({{kConfig, 10}}), t0, t0 + 1ms);
  EXPECT_FALSE(table.on_blob(c.key, kConfig, BlobRequest::head, 200, 10, t0, t0 + 2ms));
  for (int status : {404, 401, 304, 500, 416, 301, 0})
    EXPECT_FALSE(c.get(kConfig, status, 10, t0 + 3ms)) << status;
  EXPECT_FALSE(c.get("sha256:not-a-digest", 200, 10, t0 + 3ms));
  EXPECT_FALSE(c.get(kL3, 200, 10, t0 + 3ms));  // not listed
  auto ended = table.expire(t0 + 1h);
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0].outcome, PullOutcome::partial);
  EXPECT_EQ(ended[0].bytes, 0u);
  EXPECT_DOUBLE_EQ(ended[0].seconds, seconds(1ms));  // ignored requests moved nothing
}

TEST(PullSessions, SchemaOneBlobsWithoutSizes) {
  PullSessions table;
  Client c{table};
  Manifest m;
  m.kind = ManifestKind::schema1;
  for (const auto& d : {kL1, kL2, kL1}) m.layers.push_back(BlobReference{*Digest::parse(d), std::nullopt});
  c.manifest("1.0", kRoot, m, t0, t0 + 1ms);
  EXPECT_FALSE(c.get(kL1, 206, 5, t0 + 2ms));  // no size: a range cannot complete it
  EXPECT_FALSE(c.get(kL1, 200, 50, t0 + 3ms));
  auto ended = c.get(kL2, 200, 70, t0 + 4ms);
  ASSERT_TRUE(ended);
  EXPECT_EQ(ended->blobs_listed, 2u);  // the repeated blob once
  EXPECT_EQ(ended->bytes, 125u);
}

TEST(PullSessions, OnlyTheSameClientAndRepositoryCount) {
  PullSessions table;
  Client c{table};
  c.manifest("1.0", kRoot, image({{kConfig, 10}}), t0, t0 + 1ms);
  for (PullKey other : {PullKey{"10.0.0.8", c.key.user_agent, c.key.repository},
                        PullKey{c.key.client_address, "skopeo/1.9.3", c.key.repository},
                        PullKey{c.key.client_address, c.key.user_agent, "team/other"}})
    EXPECT_FALSE(table.on_blob(other, kConfig, BlobRequest::get, 200, 10, t0, t0 + 2ms));
  EXPECT_EQ(table.size(), 1u);
  EXPECT_TRUE(c.get(kConfig, 200, 10, t0 + 3ms));
}

TEST(PullSessions, ConcurrentPullsOfOneKey) {
  PullSessions table;
  Client c{table};
  c.manifest("a", fake_digest(20), image({{kConfig, 1}, {kL1, 2}}), t0, t0 + 1ms);
  c.manifest("b", fake_digest(21), image({{kL3, 1}, {kL1, 2}, {kL2, 3}}), t0 + 1ms, t0 + 2ms);
  EXPECT_EQ(table.size(), 2u);
  // A shared layer goes to the first pull waiting for it.
  EXPECT_FALSE(c.get(kL1, 200, 2, t0 + 3ms));
  auto a = c.get(kConfig, 200, 1, t0 + 4ms);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->bytes, 3u);
  EXPECT_FALSE(c.get(kL3, 200, 1, t0 + 5ms));
  EXPECT_FALSE(c.get(kL2, 200, 3, t0 + 6ms));
  auto b = c.get(kL1, 200, 2, t0 + 7ms);  // the client fetched it for b too
  ASSERT_TRUE(b);
  EXPECT_EQ(b->outcome, PullOutcome::complete);
  EXPECT_EQ(b->bytes, 6u);
}

TEST(PullSessions, AFullTableEndsTheLeastRecentlyActivePull) {
  PullSessions table({.max_sessions = 2, .idle = 10s});
  Client a{table, {"10.0.0.1", "ua", "r"}}, b{table, {"10.0.0.2", "ua", "r"}}, c{table, {"10.0.0.3", "ua", "r"}};
  a.manifest("1", kRoot, image({{kConfig, 1}, {kL1, 5}}), t0, t0 + 1ms);
  b.manifest("1", kRoot, image({{kConfig, 1}, {kL1, 5}}), t0 + 1ms, t0 + 2ms);
  a.get(kConfig, 200, 1, t0 + 3ms);  // a is now the more recent
  auto ended = c.manifest("1", kRoot, image({{kConfig, 1}}), t0 + 4ms, t0 + 5ms);
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0].outcome, PullOutcome::partial);
  EXPECT_EQ(ended[0].bytes, 0u);  // b's
  EXPECT_EQ(table.size(), 2u);
  EXPECT_TRUE(a.get(kL1, 200, 5, t0 + 6ms));  // a lives on
}

TEST(PullSessions, OneKeyHasAtMostAFewConcurrentPulls) {
  PullSessions table;
  Client c{table};
  for (std::size_t i = 0; i < PullSessions::kMaxPullsPerKey; ++i)
    EXPECT_TRUE(c.manifest("t", fake_digest(100 + i), image({{fake_digest(200 + i), 1}}), t0, t0 + 1ms).empty());
  auto ended = c.manifest("t", fake_digest(99), image({{kConfig, 1}}), t0 + 1ms, t0 + 2ms);
  EXPECT_EQ(ended.size(), 1u);
  EXPECT_EQ(table.size(), PullSessions::kMaxPullsPerKey);
}

TEST(PullSessions, AHugeListingIsTrackedInPartAndNeverComplete) {
  PullSessions table;
  Client c{table};
  std::vector<std::pair<std::string, std::uint64_t>> blobs;
  for (std::size_t i = 0; i < kMaxManifestEntries; ++i) blobs.push_back({fake_digest(1000 + i), 1});
  c.manifest("big", kRoot, image(blobs), t0, t0 + 1ms);
  EXPECT_LE(table.tracked_items(), PullSessions::kMaxItemsPerPull);
  for (const auto& [digest, size] : blobs) EXPECT_FALSE(c.get(digest, 200, size, t0 + 2ms));
  auto ended = table.expire(t0 + 1h);
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0].outcome, PullOutcome::partial);
  EXPECT_EQ(ended[0].blobs_fetched, PullSessions::kMaxItemsPerPull - 1);  // the root manifest takes one item
}

TEST(PullSessions, TheItemBudgetEndsOldPullsToMakeRoom) {
  PullSessions table({.max_sessions = 10, .idle = 10s, .average_items_per_pull = 32});  // budget 320 items
  std::size_t budget = 10 * 32;
  std::size_t evicted = 0;
  for (int i = 0; i < 10; ++i) {
    const std::string repository = "repo" + std::to_string(i);  // PullKey holds views
    Client c{table, {"10.0.0.1", "ua", repository}};
    std::vector<std::pair<std::string, std::uint64_t>> blobs;
    for (int b = 0; b < 100; ++b) blobs.push_back({fake_digest(i * 1000 + b), 1});
    evicted += c.manifest("t", fake_digest(i), image(blobs), t0, t0 + 1ms).size();
    ASSERT_LE(table.tracked_items(), budget);
  }
  EXPECT_GT(evicted, 0u);
  EXPECT_GE(table.size(), 1u);
}

TEST(PullSessions, LongUserAgentsCountByTheirStart) {
  PullSessions table;
  std::string ua(PullSessions::kMaxUserAgentKeyBytes, 'a');
  Client c{table, {"10.0.0.1", "", "r"}};
  std::string first = ua + "first", second = ua + "second";
  c.key.user_agent = first;
  c.manifest("1", kRoot, image({{kConfig, 1}}), t0, t0 + 1ms);
  c.key.user_agent = second;
  EXPECT_TRUE(c.get(kConfig, 200, 1, t0 + 2ms));
}

TEST(PullSessions, ZeroSessionsTracksNothing) {
  PullSessions table({.max_sessions = 0});
  Client c{table};
  EXPECT_TRUE(c.manifest("1", kRoot, image({{kConfig, 1}}), t0, t0 + 1ms).empty());
  EXPECT_EQ(table.size(), 0u);
  EXPECT_FALSE(c.get(kConfig, 200, 1, t0 + 2ms));
}

TEST(PullSessions, OutcomeNamesAreTheClosedSet) {
  std::set<std::string_view> names;
  for (std::size_t i = 0; i < kPullOutcomeCount; ++i) names.insert(pull_outcome_name(static_cast<PullOutcome>(i)));
  EXPECT_EQ(names, (std::set<std::string_view>{"complete", "partial", "redirected"}));
}

// Thousands of distinct clients, random digests, random statuses: the table
// stays within its bounds and every pull ends with an outcome of the set.
TEST(PullSessions, HostileTrafficStaysBounded) {
  constexpr std::size_t kMax = 500;
  PullSessions table({.max_sessions = kMax, .idle = 10s, .average_items_per_pull = 32});
  std::mt19937_64 random(16);
  std::size_t ended_count = 0;
  auto check = [&](const EndedPull& e) {
    ASSERT_LT(static_cast<std::size_t>(e.outcome), kPullOutcomeCount);
    ASSERT_GE(e.seconds, 0.0);
    ASSERT_LE(e.blobs_fetched + e.blobs_redirected, e.blobs_listed);
    ++ended_count;
  };
  PullTime now = t0;
  for (int round = 0; round < 20000; ++round) {
    now += std::chrono::microseconds(random() % 5000);
    std::string address = "10." + std::to_string(random() % 256) + "." + std::to_string(random() % 256) + ".1";
    std::string ua(random() % 300, 'x');
    for (char& ch : ua) ch = static_cast<char>(32 + random() % 95);
    std::string repository = "repo" + std::to_string(random() % 50);
    PullKey key{address, ua, repository};
    std::vector<std::pair<std::string, std::uint64_t>> blobs;
    std::size_t count = 1 + random() % 40;
    for (std::size_t b = 0; b < count; ++b) blobs.push_back({fake_digest(random()), random() % 100000});
    for (const auto& e : table.on_manifest(key, "t", fake_digest(random()), image(blobs), now, now)) check(e);
    for (int g = 0; g < 4; ++g) {
      const std::string digest = random() % 2 ? blobs[random() % blobs.size()].first : fake_digest(random());
      int status = std::array{200, 206, 307, 404, 500}[random() % 5];
      if (auto e = table.on_blob(key, digest, BlobRequest::get, status, random() % 200000, now, now)) check(*e);
    }
    if (round % 100 == 0)
      for (const auto& e : table.expire(now)) check(e);
    ASSERT_LE(table.size(), kMax);
    ASSERT_LE(table.tracked_items(), kMax * 32);
  }
  for (const auto& e : table.expire(now + 1h)) check(e);
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(table.tracked_items(), 0u);
  EXPECT_EQ(ended_count, 20000u);  // every pull ended exactly once
}

}  // namespace
}  // namespace regmeter
