// The phase functions (core/request_phases.h) on plain values: parsed heads
// in, the RequestContext they fill and the plans they return out.
#include <gtest/gtest.h>

#include <string>

#include "core/client_family.h"
#include "core/http_head.h"
#include "core/registry_error.h"
#include "core/request_phases.h"
#include "core/upload_session.h"

namespace regmeter {
namespace {

MessageHead parsed(MessageParser::Kind kind, const std::string& bytes) {
  MessageParser parser(kind);
  EXPECT_TRUE(parser.parse_head(bytes)) << parser.error();
  return parser.head();
}
MessageHead request_head(const std::string& bytes) { return parsed(MessageParser::Kind::request, bytes); }
MessageHead response_head(const std::string& bytes) { return parsed(MessageParser::Kind::response, bytes); }

class RequestHeadPhase : public ::testing::Test {
 protected:
  std::optional<LocalReply> run(const MessageHead& head) {
    request.request_id_hex.fill('a');
    return on_request_head(request, head, {"192.0.2.7", "https", false, &listen});
  }
  HostPort listen{"0.0.0.0", 5080};
  RequestContext request;
};

TEST_F(RequestHeadPhase, RoutesAndBuildsTheUpstreamHead) {
  MessageHead head = request_head(
      "GET http://proxy:5080/v2/library/alpine/manifests/3.19 HTTP/1.1\r\nHost: proxy:5080\r\n"
      "User-Agent: containerd/1.7.2\r\n\r\n");
  EXPECT_FALSE(run(head));
  EXPECT_EQ(request.record.method, Method::get);
  EXPECT_EQ(request.record.handler, Handler::manifest);
  EXPECT_EQ(request.record.repository, "library/alpine");
  EXPECT_EQ(request.route.reference, "3.19");
  EXPECT_EQ(request.record.user_agent, "containerd/1.7.2");
  EXPECT_EQ(request.record.client, ClientFamily::containerd);
  EXPECT_FALSE(request.head_request);
  EXPECT_EQ(request.client_target, "/v2/library/alpine/manifests/3.19");  // absolute form reduced
  EXPECT_EQ(request.client_host, "proxy:5080");
  EXPECT_EQ(request.upstream_head,
            "GET /v2/library/alpine/manifests/3.19 HTTP/1.1\r\nHost: proxy:5080\r\n"
            "User-Agent: containerd/1.7.2\r\nX-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: https\r\n"
            "X-Forwarded-Host: proxy:5080\r\nX-Request-Id: " +
                std::string(32, 'a') + "\r\n\r\n");
}

TEST_F(RequestHeadPhase, TakesTheSessionTokenOutOfTheUrl) {
  SessionToken token{1700000000000000000, 4096};
  MessageHead head = request_head("PATCH /v2/r/blobs/uploads/u1?_state=x&_rm=" + encode_session_token(token) +
                                  " HTTP/1.1\r\nHost: p\r\nContent-Length: 1\r\n\r\n");
  EXPECT_FALSE(run(head));
  ASSERT_TRUE(request.session_token);
  EXPECT_EQ(request.session_token->started_unix_ns, token.started_unix_ns);
  EXPECT_EQ(request.session_token->bytes, 4096u);
  EXPECT_EQ(request.record.handler, Handler::blob_upload_chunk);
  EXPECT_EQ(request.route.reference, "u1");
  // The client's target keeps it (session steps read it); the registry never sees it.
  EXPECT_NE(request.client_target.find("_rm="), std::string::npos);
  EXPECT_EQ(request.upstream_head.substr(0, request.upstream_head.find("\r\n")),
            "PATCH /v2/r/blobs/uploads/u1?_state=x HTTP/1.1");
}

TEST_F(RequestHeadPhase, HostDefaultsToOurAddress) {
  MessageHead head = request_head("HEAD /v2/ HTTP/1.0\r\n\r\n");
  EXPECT_FALSE(run(head));
  EXPECT_TRUE(request.head_request);
  EXPECT_EQ(request.client_host, "0.0.0.0:5080");
  EXPECT_NE(request.upstream_head.find("\r\nHost: 0.0.0.0:5080\r\n"), std::string::npos) << request.upstream_head;
}

// Each refusal: the request, and the answer it gets here instead of going upstream.
struct Refusal {
  const char* head;
  int status;
  const char* code;
  bool close_after;  // CONNECT: what follows is tunnel data we will not read
};
TEST_F(RequestHeadPhase, RefusesWhatCannotGoUpstream) {
  const Refusal refusals[] = {
      {"CONNECT registry:443 HTTP/1.1\r\nHost: registry:443\r\n\r\n", 405, "UNSUPPORTED", true},
      {"GET /v2/a/%2F/b/manifests/1 HTTP/1.1\r\nHost: p\r\n\r\n", 400, "NAME_INVALID", false},
      {"GET /v2/a/../b/manifests/1 HTTP/1.1\r\nHost: p\r\n\r\n", 400, "NAME_INVALID", false},
  };
  for (const Refusal& refusal : refusals) {
    SCOPED_TRACE(refusal.head);
    request = RequestContext{};
    MessageHead head = request_head(refusal.head);
    auto reply = run(head);
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->status, refusal.status);
    EXPECT_EQ(reply->code, refusal.code);
    EXPECT_EQ(reply->close_after, refusal.close_after);
    EXPECT_EQ(request.record.handler, Handler::other);  // not classified
    EXPECT_TRUE(request.upstream_head.empty());
  }
}

TEST(LocalReplyBytes, DistributionErrorBody) {
  auto bytes = local_reply_bytes({502, "UNAVAILABLE", "upstream registry unavailable"}, false);
  EXPECT_EQ(bytes.body, "{\"errors\":[{\"code\":\"UNAVAILABLE\",\"message\":\"upstream registry unavailable\"}]}\n");
  EXPECT_EQ(bytes.head,
            "HTTP/1.1 502 Bad Gateway\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: " +
                std::to_string(bytes.body.size()) + "\r\nDocker-Distribution-Api-Version: registry/2.0\r\n\r\n");
}

TEST(LocalReplyBytes, ExtraHeadersAndClose) {
  auto bytes = local_reply_bytes({503, "TOOMANYREQUESTS", "retry \"later\"", "Retry-After: 10\r\n"}, true);
  EXPECT_NE(bytes.body.find(R"("message":"retry \"later\"")"), std::string::npos) << bytes.body;
  EXPECT_EQ(bytes.head.substr(0, bytes.head.find("\r\n")), "HTTP/1.1 503 Service Unavailable");
  EXPECT_NE(bytes.head.find("\r\nRetry-After: 10\r\nConnection: close\r\n\r\n"), std::string::npos) << bytes.head;
  EXPECT_EQ(reason_phrase(418), "Error");
}

TEST(HeadRefusal, ReasonFollowsStatus) {
  EXPECT_EQ(head_refusal_reason(505), RejectReason::unsupported_version);
  EXPECT_EQ(head_refusal_reason(431), RejectReason::head_too_large);
  EXPECT_EQ(head_refusal_reason(400), RejectReason::malformed_head);
}

class ResponseHeadPhase : public ::testing::Test {
 protected:
  // A request already through phase 1.
  void request_for(const std::string& bytes) {
    request_message = request_head(bytes);
    HostPort listen{"0.0.0.0", 5080};
    ASSERT_FALSE(on_request_head(request, request_message, {"192.0.2.7", "http", false, &listen}));
    request.request_done = true;
  }
  ResponseHeadPlan run(const MessageHead& response, bool close_after = false, bool until_eof = false) {
    return on_response_head(request, response, {"registry:5000", "http", close_after, until_eof});
  }
  MessageHead request_message;
  RequestContext request;
};

TEST_F(ResponseHeadPhase, OpenedSessionGetsATokenInItsLocation) {
  request_for("POST /v2/r/blobs/uploads/ HTTP/1.1\r\nHost: proxy:5080\r\nContent-Length: 0\r\n\r\n");
  request.started_unix_ns = 1700000000000000000;
  MessageHead response =
      response_head("HTTP/1.1 202 Accepted\r\nLocation: http://registry:5000/v2/r/blobs/uploads/u9?_state=s\r\n"
                    "Content-Length: 0\r\n\r\n");
  ResponseHeadPlan plan = run(response);
  EXPECT_EQ(request.session_step.kind, SessionStep::Kind::opened);
  EXPECT_EQ(request.session_id, "u9");
  ASSERT_NE(plan.touched_upload_id, nullptr);
  EXPECT_EQ(*plan.touched_upload_id, "u9");
  EXPECT_EQ(plan.session_token.started_unix_ns, 1700000000000000000);
  EXPECT_EQ(plan.session_token.bytes, 0u);
  EXPECT_EQ(plan.client_head,
            "HTTP/1.1 202 Accepted\r\nLocation: http://proxy:5080/v2/r/blobs/uploads/u9?_state=s&_rm=" +
                encode_session_token(plan.session_token) + "\r\nContent-Length: 0\r\n\r\n");
  EXPECT_FALSE(plan.close_after);
  EXPECT_TRUE(request.upstream_reusable);
}

TEST_F(ResponseHeadPhase, ContinuedSessionAddsThisRequestsBytes) {
  SessionToken carried{1700000000000000000, 1000};
  request_for("PATCH /v2/r/blobs/uploads/u9?_rm=" + encode_session_token(carried) +
              " HTTP/1.1\r\nHost: p\r\nContent-Length: 500\r\n\r\n");
  request.record.request_body_bytes = 500;
  ResponseHeadPlan plan = run(response_head(
      "HTTP/1.1 202 Accepted\r\nLocation: /v2/r/blobs/uploads/u9?_state=t\r\nContent-Length: 0\r\n\r\n"));
  EXPECT_EQ(request.session_step.kind, SessionStep::Kind::continued);
  ASSERT_NE(plan.touched_upload_id, nullptr);
  EXPECT_EQ(*plan.touched_upload_id, "u9");
  EXPECT_EQ(plan.session_token.started_unix_ns, carried.started_unix_ns);
  EXPECT_EQ(plan.session_token.bytes, 1500u);
  EXPECT_NE(plan.client_head.find("_rm=" + encode_session_token(plan.session_token)), std::string::npos);
}

TEST_F(ResponseHeadPhase, ConnectionFates) {
  request_for("GET /v2/r/blobs/sha256:ab HTTP/1.1\r\nHost: p\r\n\r\n");
  ResponseHeadPlan plan = run(response_head("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n"));
  EXPECT_FALSE(request.upstream_reusable) << "the upstream said it closes";
  EXPECT_FALSE(plan.close_after) << "the client connection may go on";
  EXPECT_EQ(plan.client_head, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n");  // hop-by-hop removed
  EXPECT_EQ(plan.touched_upload_id, nullptr);

  RequestContext fresh;
  request = std::move(fresh);
  request_for("GET /v2/r/blobs/sha256:ab HTTP/1.1\r\nHost: p\r\n\r\n");
  plan = run(response_head("HTTP/1.1 200 OK\r\n\r\n"), false, true);
  EXPECT_FALSE(request.upstream_reusable);
  EXPECT_TRUE(plan.close_after) << "a body ending at EOF can only end with our close";
  EXPECT_EQ(plan.client_head, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
}

TEST_F(ResponseHeadPhase, AnsweredBeforeTheBodyEndedCloses) {
  request_for("PUT /v2/r/blobs/uploads/u1?digest=sha256:00 HTTP/1.1\r\nHost: p\r\nContent-Length: 10\r\n\r\n");
  request.request_done = false;
  ResponseHeadPlan plan = run(response_head("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"));
  EXPECT_TRUE(plan.close_after);
  EXPECT_TRUE(request.upstream_reusable);  // the engine decides that with the unsent body
  EXPECT_EQ(request.session_step.kind, SessionStep::Kind::none);  // a 401 changes no session
}

TEST(FinishPhase, UnansweredUploadBytesGoToTheTable) {
  RequestContext request;
  request.route.handler = Handler::blob_upload_chunk;
  request.session_request_in_table = true;
  request.record.request_body_bytes = 777;
  FinishPlan plan = on_finish(request, 0);
  EXPECT_TRUE(plan.leaves_session_table);
  EXPECT_EQ(plan.unanswered_bytes, 777u);
  EXPECT_FALSE(plan.session_closed);
  EXPECT_FALSE(plan.closed_session);

  request.session_step = {SessionStep::Kind::continued};  // answered: the bytes are in the token
  EXPECT_EQ(on_finish(request, 0).unanswered_bytes, 0u);
  request.session_request_in_table = false;
  EXPECT_FALSE(on_finish(request, 0).leaves_session_table);
}

TEST(FinishPhase, ClosedSessionIsObserved) {
  RequestContext request;
  request.route.handler = Handler::blob_upload_chunk;
  request.session_step = {SessionStep::Kind::closed, SessionOutcome::completed};
  request.session_token = SessionToken{1'000'000'000, 5000};
  request.record.request_body_bytes = 100;
  FinishPlan plan = on_finish(request, 3'500'000'000);
  EXPECT_TRUE(plan.session_closed);
  ASSERT_TRUE(plan.closed_session);
  EXPECT_DOUBLE_EQ(plan.closed_session->seconds, 2.5);
  EXPECT_EQ(plan.closed_session->bytes, 5100u);
}

TEST(FinishPhase, AccessRecordOfAnsweredAndAbandonedRequests) {
  RequestContext request;
  MessageHead head = request_head("PUT /v2/team/app/blobs/uploads/u9?digest=sha256:00 HTTP/1.1\r\nHost: p\r\n"
                                  "User-Agent: docker/27.0\r\nContent-Length: 3\r\n\r\n");
  EXPECT_FALSE(on_request_head(request, head, {"192.0.2.7", "http", false, nullptr}));
  request.started_unix_ns = 1'700'000'000'000'000'000;
  request.record.started = Clock::time_point{} + std::chrono::seconds(10);
  request.record.upstream_headers = request.record.started + std::chrono::milliseconds(250);
  request.record.finished = request.record.started + std::chrono::milliseconds(1500);
  request.record.status = 404;
  request.record.error = RegistryError::blob_upload_unknown;
  request.record.request_body_bytes = 3;
  request.record.response_body_bytes = 120;
  request.session_id = "u9";
  request.session_step = {SessionStep::Kind::closed, SessionOutcome::failed};

  AccessRecord line = access_record_of(request, head, "192.0.2.7");
  EXPECT_EQ(line.started_unix_ns, request.started_unix_ns);
  EXPECT_EQ(line.client, "192.0.2.7");
  EXPECT_EQ(line.method, "PUT");
  EXPECT_EQ(line.handler, "blob_upload_chunk");
  EXPECT_EQ(line.repository, "team/app");
  EXPECT_EQ(line.reference, "u9");
  EXPECT_EQ(line.status, 404);
  EXPECT_EQ(line.request_bytes, 3u);
  EXPECT_EQ(line.response_bytes, 120u);
  EXPECT_DOUBLE_EQ(line.duration_s, 1.5);
  EXPECT_DOUBLE_EQ(line.upstream_header_s, 0.25);
  EXPECT_EQ(line.upload_session, "u9");
  EXPECT_EQ(line.session_outcome, outcome_name(SessionOutcome::failed));
  EXPECT_EQ(line.user_agent, "docker/27.0");
  EXPECT_EQ(line.client_family, "docker");
  EXPECT_EQ(line.error, "BLOB_UPLOAD_UNKNOWN");

  // The client went away before any answer: its code, no upstream time, no error field.
  request.record.status = 0;
  request.record.upstream_headers = {};
  request.session_step = {};
  line = access_record_of(request, head, "192.0.2.7");
  EXPECT_EQ(line.status, kClientClosedStatus);
  EXPECT_LT(line.upstream_header_s, 0);
  EXPECT_TRUE(line.session_outcome.empty());
  EXPECT_TRUE(line.error.empty());
}

}  // namespace
}  // namespace regmeter
