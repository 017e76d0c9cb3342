#include "core/upload_session.h"

#include <gtest/gtest.h>

namespace regmeter {
namespace {

TEST(SessionToken, RoundTrips) {
  SessionToken token{1764064800123456789, 1073741824};
  auto text = encode_session_token(token);
  auto back = decode_session_token(text);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->started_unix_ns, token.started_unix_ns);
  EXPECT_EQ(back->bytes, token.bytes);
}

TEST(SessionToken, RejectsMalformed) {
  for (const char* text : {"", ".", "abc", "abc.", ".12", "zz.1", "1.zz", "0.5", "1.2.3", "ffffffffffffffffff.1",
                           "-1.2"})
    EXPECT_FALSE(decode_session_token(text)) << text;
}

struct StripCase {
  std::string target;
  std::string stripped;
  bool has_token;
};

TEST(TakeSessionToken, StripsOnlyOurParameterByteForByte) {
  const std::string token = encode_session_token({1000, 42});
  const std::vector<StripCase> cases = {
      {"/v2/a/blobs/uploads/u?_state=AbC%3D&_rm=" + token, "/v2/a/blobs/uploads/u?_state=AbC%3D", true},
      {"/v2/a/blobs/uploads/u?_rm=" + token + "&_state=AbC%3D", "/v2/a/blobs/uploads/u?_state=AbC%3D", true},
      {"/v2/a/blobs/uploads/u?_state=x&_rm=" + token + "&digest=sha256%3Aab", "/v2/a/blobs/uploads/u?_state=x&digest=sha256%3Aab", true},
      {"/v2/a/blobs/uploads/u?_rm=" + token, "/v2/a/blobs/uploads/u", true},
      {"/v2/a/blobs/uploads/u?_state=x", "/v2/a/blobs/uploads/u?_state=x", false},
      {"/v2/a/blobs/uploads/u", "/v2/a/blobs/uploads/u", false},
      {"/v2/a/blobs/uploads/u?_rmx=1&_state=x", "/v2/a/blobs/uploads/u?_rmx=1&_state=x", false},
      {"/v2/a/blobs/uploads/u?_rm=garbage&_state=x", "/v2/a/blobs/uploads/u?_state=x", false},
  };
  for (const auto& c : cases) {
    std::string target = c.target;
    auto found = take_session_token(target);
    EXPECT_EQ(target, c.stripped) << c.target;
    EXPECT_EQ(found.has_value(), c.has_token) << c.target;
    if (found) {
      EXPECT_EQ(found->started_unix_ns, 1000);
      EXPECT_EQ(found->bytes, 42u);
    }
  }
}

TEST(WithSessionToken, AppendsToRelativeAndAbsoluteLocations) {
  SessionToken token{1000, 42};
  const std::string t = encode_session_token(token);
  EXPECT_EQ(with_session_token("/v2/a/blobs/uploads/u?_state=x", token), "/v2/a/blobs/uploads/u?_state=x&_rm=" + t);
  EXPECT_EQ(with_session_token("http://h:5080/v2/a/blobs/uploads/u", token), "http://h:5080/v2/a/blobs/uploads/u?_rm=" + t);
  EXPECT_EQ(with_session_token("/u?a=1#frag", token), "/u?a=1&_rm=" + t + "#frag");
  // What a client does next: append digest=, then the proxy strips the token.
  std::string next = with_session_token("/v2/a/blobs/uploads/u?_state=x", token) + "&digest=sha256:ab";
  auto found = take_session_token(next);
  ASSERT_TRUE(found);
  EXPECT_EQ(next, "/v2/a/blobs/uploads/u?_state=x&digest=sha256:ab");
}

struct StepCase {
  Handler handler;
  Method method;
  const char* target;
  int status;
  SessionStep::Kind kind;
  SessionOutcome outcome;
};

TEST(SessionStep, FollowsTheUploadProtocol) {
  using K = SessionStep::Kind;
  using O = SessionOutcome;
  const StepCase cases[] = {
      {Handler::blob_upload, Method::post, "/v2/a/blobs/uploads/", 202, K::opened, O::completed},
      {Handler::blob_upload, Method::post, "/v2/a/blobs/uploads/?mount=sha256:ab&from=b", 201, K::closed, O::mounted},
      {Handler::blob_upload, Method::post, "/v2/a/blobs/uploads/?mount=sha256:ab&from=b", 202, K::opened, O::completed},
      {Handler::blob_upload, Method::post, "/v2/a/blobs/uploads/?digest=sha256:ab", 201, K::closed, O::completed},
      {Handler::blob_upload, Method::post, "/v2/a/blobs/uploads/", 401, K::none, O::completed},
      {Handler::blob_upload, Method::post, "/v2/a/blobs/uploads/", 500, K::closed, O::failed},
      {Handler::blob_upload_chunk, Method::patch, "/v2/a/blobs/uploads/u", 202, K::continued, O::completed},
      {Handler::blob_upload_chunk, Method::patch, "/v2/a/blobs/uploads/u", 416, K::closed, O::failed},
      {Handler::blob_upload_chunk, Method::put, "/v2/a/blobs/uploads/u?digest=sha256:ab", 201, K::closed, O::completed},
      {Handler::blob_upload_chunk, Method::put, "/v2/a/blobs/uploads/u?digest=sha256:ab", 400, K::closed, O::failed},
      {Handler::blob_upload_chunk, Method::put, "/v2/a/blobs/uploads/u?digest=sha256:ab", 401, K::none, O::completed},
      {Handler::blob_upload_chunk, Method::delete_, "/v2/a/blobs/uploads/u", 204, K::closed, O::cancelled},
      {Handler::blob_upload_chunk, Method::delete_, "/v2/a/blobs/uploads/u", 404, K::none, O::completed},
      {Handler::blob_upload_chunk, Method::delete_, "/v2/a/blobs/uploads/u", 500, K::closed, O::failed},
      {Handler::blob_upload_chunk, Method::get, "/v2/a/blobs/uploads/u", 204, K::continued, O::completed},
      {Handler::blob_upload_chunk, Method::get, "/v2/a/blobs/uploads/u", 404, K::none, O::completed},
      {Handler::blob_upload_chunk, Method::head, "/v2/a/blobs/uploads/u", 204, K::continued, O::completed},
      {Handler::blob_upload_chunk, Method::put, "/v2/a/blobs/uploads/u", 0, K::none, O::completed},
      {Handler::manifest, Method::put, "/v2/a/manifests/t", 201, K::none, O::completed},
      {Handler::blob, Method::get, "/v2/a/blobs/sha256:ab", 200, K::none, O::completed},
  };
  for (const auto& c : cases) {
    SessionStep step = session_step(c.handler, c.method, c.target, c.status);
    EXPECT_EQ(step.kind, c.kind) << c.target << " " << c.status;
    if (step.kind == K::closed) {
      EXPECT_EQ(step.outcome, c.outcome) << c.target << " " << c.status;
    }
  }
}

TEST(OpenSessionTable, ExpiresOnlyIdleSessions) {
  OpenSessionTable table;
  table.touch("a", "team/a", {100, 0}, 1'000);
  table.touch("b", "team/b", {200, 5}, 1'000);
  table.touch("a", "team/a", {100, 10}, 5'000);  // a request for "a" later
  auto expired = table.take_expired(6'500, 2'000);
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].upload_id, "b");
  EXPECT_EQ(expired[0].entry.repository, "team/b");
  EXPECT_EQ(expired[0].entry.token.started_unix_ns, 200);
  EXPECT_EQ(expired[0].entry.token.bytes, 5u);
  EXPECT_EQ(table.size(), 1u);
  table.close("a");
  EXPECT_EQ(table.size(), 0u);
  EXPECT_TRUE(table.take_expired(1'000'000, 1).empty());
}

// One PATCH streaming a whole layer for longer than the timeout: the session
// is not abandoned while the PATCH is in flight, and its idle time counts
// from the PATCH's end.
TEST(OpenSessionTable, ASessionWithARequestInFlightIsNeverAbandoned) {
  OpenSessionTable table;
  table.touch("u", "team/app", {1'000, 0}, 1'000);  // the POST's 202
  ASSERT_TRUE(table.request_began("u", 2'000));     // the PATCH's head
  EXPECT_TRUE(table.take_expired(1'000'000, 10).empty()) << "in flight for far longer than the timeout";
  table.request_progressed("u", 500'000);
  table.touch("u", "team/app", {1'000, 4096}, 900'000);  // the PATCH's 202: still in flight until it ends
  EXPECT_TRUE(table.take_expired(1'000'000, 10).empty());
  table.request_ended("u", 1'000'000, 0);
  EXPECT_TRUE(table.take_expired(1'000'005, 10).empty()) << "idle only from the PATCH's end";
  auto expired = table.take_expired(1'000'011, 10);
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].entry.last_seen_unix_ns, 1'000'000);
  EXPECT_EQ(expired[0].entry.token.bytes, 4096u);
}

TEST(OpenSessionTable, BodyProgressMovesLastSeen) {
  OpenSessionTable table;
  table.touch("u", "r", {1, 0}, 100);
  ASSERT_TRUE(table.request_began("u", 200));
  table.request_progressed("u", 300);
  table.request_progressed("u", 400);
  table.request_ended("u", 450, 0);
  auto expired = table.take_expired(10'000, 10);
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].entry.last_seen_unix_ns, 450);
  EXPECT_EQ(expired[0].entry.requests_in_flight, 0u);
}

TEST(OpenSessionTable, BytesOfARequestCutOffBeforeItsAnswerAreReceivedToo) {
  OpenSessionTable table;
  table.touch("u", "r", {1, 1000}, 100);  // a first PATCH of 1000 bytes answered 202
  ASSERT_TRUE(table.request_began("u", 200));
  table.request_ended("u", 300, 2500);    // the next one cut off after 2500 bytes
  auto expired = table.take_expired(10'000, 10);
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].entry.token.bytes, 1000u);
  EXPECT_EQ(expired[0].entry.bytes_received(), 3500u);
}

TEST(OpenSessionTable, CountsConcurrentRequestsOfOneSession) {
  // A status GET on another connection while the PATCH streams.
  OpenSessionTable table;
  table.touch("u", "r", {1, 0}, 100);
  ASSERT_TRUE(table.request_began("u", 200));  // PATCH
  ASSERT_TRUE(table.request_began("u", 300));  // GET
  table.request_ended("u", 400, 0);           // the GET is answered
  EXPECT_TRUE(table.take_expired(10'000, 10).empty()) << "the PATCH is still in flight";
  table.request_ended("u", 500, 0);
  EXPECT_EQ(table.take_expired(10'000, 10).size(), 1u);
}

TEST(OpenSessionTable, RequestsOfUnknownOrClosedSessionsLeaveNoEntry) {
  OpenSessionTable table;
  // A session begun before this proxy was in the path, or on another replica.
  EXPECT_FALSE(table.request_began("elsewhere", 100));
  table.request_progressed("elsewhere", 200);
  table.request_ended("elsewhere", 300, 0);
  EXPECT_EQ(table.size(), 0u);
  // The final PUT closes the session before its end is recorded.
  table.touch("u", "r", {1, 0}, 100);
  ASSERT_TRUE(table.request_began("u", 200));
  table.close("u");
  table.request_ended("u", 300, 0);
  EXPECT_EQ(table.size(), 0u);
  EXPECT_TRUE(table.take_expired(1'000'000, 10).empty());
}

TEST(OpenSessionTable, TouchKeepsTheRepositoryOfTheOpeningRequest) {
  OpenSessionTable table;
  table.touch("u", "team/app", {1, 0}, 100);
  table.touch("u", "", {1, 10}, 200);
  auto expired = table.take_expired(10'000, 10);
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].entry.repository, "team/app");
  EXPECT_EQ(expired[0].entry.token.bytes, 10u);
}

TEST(OutcomeName, MatchesLabels) {
  EXPECT_EQ(outcome_name(SessionOutcome::completed), "completed");
  EXPECT_EQ(outcome_name(SessionOutcome::mounted), "mounted");
  EXPECT_EQ(outcome_name(SessionOutcome::cancelled), "cancelled");
  EXPECT_EQ(outcome_name(SessionOutcome::failed), "failed");
  EXPECT_EQ(outcome_name(SessionOutcome::abandoned), "abandoned");
}

}  // namespace
}  // namespace regmeter

namespace regmeter {
namespace {

constexpr std::int64_t kSecond = 1'000'000'000;

TEST(ObserveClosedSession, UsesTheCarriedStartAndBytes) {
  // POST at t=100 s, a PATCH carried 5 MiB, the final PUT (empty body) at t=130 s.
  auto seen = observe_closed_session(Handler::blob_upload_chunk, SessionToken{100 * kSecond, 5 << 20}, 129 * kSecond,
                                     0, 130 * kSecond);
  ASSERT_TRUE(seen);
  EXPECT_DOUBLE_EQ(seen->seconds, 30.0);
  EXPECT_EQ(seen->bytes, 5u << 20);
  // A monolithic PUT carries the body itself.
  seen = observe_closed_session(Handler::blob_upload_chunk, SessionToken{100 * kSecond, 0}, 101 * kSecond, 7000,
                                102 * kSecond);
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->bytes, 7000u);
}

TEST(ObserveClosedSession, APutWithoutItsPostIsNotObserved) {
  // The session began before this proxy was in the path: no token, no start.
  EXPECT_FALSE(observe_closed_session(Handler::blob_upload_chunk, std::nullopt, 50 * kSecond, 1 << 20, 51 * kSecond));
}

TEST(ObserveClosedSession, APostThatClosesItsOwnSessionStartsIt) {
  // A mount answered 201, or a monolithic POST ?digest= answered 201.
  auto seen = observe_closed_session(Handler::blob_upload, std::nullopt, 10 * kSecond, 4096, 10 * kSecond + kSecond / 2);
  ASSERT_TRUE(seen);
  EXPECT_DOUBLE_EQ(seen->seconds, 0.5);
  EXPECT_EQ(seen->bytes, 4096u);
}

TEST(ObserveClosedSession, ClockSkewBetweenReplicasNeverGivesNegativeDurations) {
  auto seen = observe_closed_session(Handler::blob_upload_chunk, SessionToken{200 * kSecond, 1}, 199 * kSecond, 0,
                                     199 * kSecond);
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->seconds, 0.0);
}

TEST(SessionLifecycle, OpenTouchCloseAndAbandonmentTogether) {
  // The pieces the data path combines, end to end without sockets: a
  // session opened, continued, then left alone past the timeout.
  OpenSessionTable table;
  SessionStep opened = session_step(Handler::blob_upload, Method::post, "/v2/a/blobs/uploads/", 202);
  ASSERT_EQ(opened.kind, SessionStep::Kind::opened);
  SessionToken token{1 * kSecond, 0};
  table.touch("u1", "a", token, 1 * kSecond);
  SessionStep patch = session_step(Handler::blob_upload_chunk, Method::patch, "/v2/a/blobs/uploads/u1", 202);
  ASSERT_EQ(patch.kind, SessionStep::Kind::continued);
  token.bytes += 1 << 20;
  table.touch("u1", "a", token, 2 * kSecond);
  EXPECT_TRUE(table.take_expired(3 * kSecond, 5 * kSecond).empty());  // still within the timeout
  auto expired = table.take_expired(8 * kSecond, 5 * kSecond);
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].entry.token.bytes, 1u << 20);
  EXPECT_EQ(expired[0].entry.last_seen_unix_ns - expired[0].entry.token.started_unix_ns, 1 * kSecond);
  // A session closed in time is never reported abandoned.
  table.touch("u2", "a", token, 8 * kSecond);
  table.close("u2");
  EXPECT_TRUE(table.take_expired(100 * kSecond, 5 * kSecond).empty());
}

}  // namespace
}  // namespace regmeter
