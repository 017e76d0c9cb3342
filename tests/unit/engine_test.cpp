// The connection engine (ClientConnection) driven without sockets: a fake
// client stream (scripted bytes in, captured bytes out, peer close, a
// controllable flush), fake upstream connections handed out by a fake
// UpstreamSource, and a manual timer. Each case checks the bytes each side
// got and the Exchange record the engine handed to the metrics.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <algorithm>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <event2/buffer.h>
#include <prometheus/registry.h>

#include "core/config.h"
#include "core/exemplar.h"
#include "core/metrics.h"
#include "core/upload_session.h"
#include "net/access_log.h"
#include "net/connection_host.h"
#include "net/exchange.h"
#include "net/metering.h"
#include "net/upstream.h"

namespace regmeter {
namespace {

// What a test sees of a stream, kept after the engine has destroyed it.
struct StreamLog {
  std::string sent;  // bytes the engine wrote and the peer "received"
  bool destroyed = false;
  bool write_shut = false;
};

class FakeStream final : public Stream {
 public:
  explicit FakeStream(std::shared_ptr<StreamLog> log, StreamHandler* handler = nullptr)
      : Stream(handler), log_(std::move(log)) {}
  ~FakeStream() override { log_->destroyed = true; }

  void set_reading(bool enabled) override { reading_ = enabled; }
  // Like a socket with room to spare, unless held: everything written goes out.
  bool flush() override {
    if (write_fails) return false;
    if (!hold_output) take_output();
    return true;
  }
  bool idle_and_alive() override { return !peer_closed_ && !failed_ && evbuffer_get_length(input_) == 0; }
  void shutdown_write() override { log_->write_shut = true; }

  // The peer sends `bytes`.
  void deliver(const std::string& bytes) {
    evbuffer_add(input_, bytes.data(), bytes.size());
    transferred_ += bytes.size();
    handler_->on_stream_readable(*this);
  }
  void close_from_peer() {
    peer_closed_ = true;
    handler_->on_stream_readable(*this);
  }
  void connect_succeeds() { handler_->on_stream_connected(*this); }
  void reset_by_peer() {
    failed_ = true;
    handler_->on_stream_error(*this, "connection reset by peer");
  }
  // A held output drains: the peer reads all of it.
  void drain() {
    take_output();
    if (evbuffer_get_length(output_) <= low_watermark_) handler_->on_stream_drained(*this);
  }
  std::size_t pending_output() const { return evbuffer_get_length(output_); }

  bool hold_output = false;  // flush() leaves output() queued (a slow peer)
  bool write_fails = false;

 private:
  void take_output() {
    std::size_t length = evbuffer_get_length(output_);
    log_->sent.resize(log_->sent.size() + length);
    evbuffer_remove(output_, log_->sent.data() + log_->sent.size() - length, length);
    transferred_ += length;
  }

  std::shared_ptr<StreamLog> log_;
};

// Upstream connections: dialled ones connect when the test says so; given
// back ones are reused by the next take_idle (the pool's most recent first).
class FakeUpstream final : public UpstreamSource {
 public:
  struct Dial {
    FakeStream* stream;  // valid while !log->destroyed
    std::shared_ptr<StreamLog> log;
  };

  std::unique_ptr<UpstreamConnection> take_idle(StreamHandler* new_handler) override {
    if (idle_.empty()) return nullptr;
    auto connection = std::move(idle_.back());
    idle_.pop_back();
    connection->stream->set_handler(new_handler);
    return connection;
  }
  Dialled connect(StreamHandler* handler, UpstreamWaiter* waiter, UpstreamSlot) override {
    Dialled dialled;
    if (at_cap) {
      waiting.push_back(waiter);
      dialled.queued = true;
      return dialled;
    }
    auto log = std::make_shared<StreamLog>();
    auto stream = std::make_unique<FakeStream>(log, handler);
    dials.push_back({stream.get(), log});
    dialled.connection = std::make_unique<UpstreamConnection>();
    dialled.connection->stream = std::move(stream);
    dialled.connection->connect_started = Clock::now();
    return dialled;
  }
  void cancel_wait(UpstreamWaiter* waiter) override { std::erase(waiting, waiter); }
  void give_back(std::unique_ptr<UpstreamConnection> connection) override {
    connection->requests_served++;
    connection->stream->set_handler(nullptr);
    idle_.push_back(std::move(connection));
  }
  const std::string& description() const override { return description_; }
  std::size_t address_count() const override { return 1; }
  void connect_failed(const UpstreamConnection&) override {}

  std::size_t idle_count() const { return idle_.size(); }
  std::vector<Dial> dials;
  bool at_cap = false;  // --upstream-max-connections reached: connect() queues
  std::vector<UpstreamWaiter*> waiting;

 private:
  std::vector<std::unique_ptr<UpstreamConnection>> idle_;
  std::string description_ = "registry.test:5000";
};

class ManualTimer final : public ConnectionTimer {
 public:
  ManualTimer(void (*fire)(void*), void* arg) : fire_(fire), arg_(arg) {}
  void arm(double seconds) override { armed_for = seconds; }
  void cancel() override { armed_for = -1; }
  // The clock reaches the armed time.
  void fire() {
    ASSERT_GE(armed_for, 0) << "timer not armed";
    armed_for = -1;
    fire_(arg_);
  }
  double armed_for = -1;

 private:
  void (*fire_)(void*);
  void* arg_;
};

// The Exchange as recorded, with its views copied out.
struct Recorded {
  Handler handler;
  Method method;
  int status;
  std::uint64_t request_body_bytes, response_body_bytes;
  bool reached_upstream;
  std::string repository;
};

class FakeHost final : public ConnectionHost {
 public:
  FakeHost() : metering_(config_, registry_) {
    std::remove(log_path_.c_str());
    log_sink_ = std::make_unique<AccessLogSink>(log_path_);
    access_log_ = std::make_unique<AccessLogBuffer>(log_sink_.get());
  }
  ~FakeHost() {
    access_log_.reset();
    log_sink_.reset();
    std::remove(log_path_.c_str());
  }

  const Config& config() const override { return config_; }
  const FlowLimits& limits() const override { return limits_; }
  std::string_view client_scheme() const override { return "http"; }
  bool draining() const override { return false; }
  MetricsShard& metrics() override { return shard_; }
  void request_finished(const Exchange& r) override {
    records.push_back({r.handler, r.method, r.status, r.request_body_bytes, r.response_body_bytes, r.reached_upstream,
                       std::string(r.repository)});
    shard_.request_finished(r);
  }
  void handshake_failed(bool) override {}
  OpenSessionTable& sessions() override { return sessions_; }
  SharedMetering& metering() override { return metering_; }
  AccessLogBuffer& access_log() override { return *access_log_; }
  RequestIdGenerator& request_ids() override { return request_ids_; }
  UpstreamSource& upstream() override { return upstream_; }
  std::unique_ptr<ConnectionTimer> make_timer(void (*fire)(void*), void* arg) override {
    auto timer = std::make_unique<ManualTimer>(fire, arg);
    timer_ = timer.get();
    return timer;
  }
  void forget(ClientConnection*) override { forgotten++; }

  // The access log's lines so far (closes the log: call once, at the end).
  std::vector<std::string> access_lines() {
    access_log_->flush();
    access_log_.reset();
    log_sink_.reset();  // its writer thread finishes the file
    std::ifstream in(log_path_);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }

  Config config_;
  FlowLimits limits_;
  FakeUpstream upstream_;
  ManualTimer* timer_ = nullptr;
  std::vector<Recorded> records;
  int forgotten = 0;

 private:
  prometheus::Registry registry_;
  MetricsShard shard_;
  OpenSessionTable sessions_;
  SharedMetering metering_;
  std::string log_path_ = ::testing::TempDir() + "engine_test_access_" + std::to_string(::getpid()) + ".log";
  std::unique_ptr<AccessLogSink> log_sink_;
  std::unique_ptr<AccessLogBuffer> access_log_;
  RequestIdGenerator request_ids_{0x1234, 0};
};

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override { start(); }
  void TearDown() override { delete connection_; }

  void start() {
    client_log_ = std::make_shared<StreamLog>();
    auto stream = std::make_unique<FakeStream>(client_log_);
    client_ = stream.get();
    connection_ = new ClientConnection(host_, std::move(stream), "192.0.2.7");
    connection_->start();
  }
  bool closed() const { return host_.forgotten > 0; }
  FakeStream& upstream(std::size_t dial) { return *host_.upstream_.dials.at(dial).stream; }
  const StreamLog& upstream_log(std::size_t dial) { return *host_.upstream_.dials.at(dial).log; }
  // Connects dial `dial` and returns what the engine sent on it.
  std::string connect(std::size_t dial) {
    upstream(dial).connect_succeeds();
    return upstream_log(dial).sent;
  }

  FakeHost host_;
  std::shared_ptr<StreamLog> client_log_;
  FakeStream* client_ = nullptr;  // valid while !client_log_->destroyed
  ClientConnection* connection_ = nullptr;
};

std::string request_line_of(const std::string& head) { return head.substr(0, head.find("\r\n")); }

constexpr const char* kOkJson = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";

TEST_F(EngineTest, KeepAliveReusesTheUpstreamConnection) {
  client_->deliver("GET /v2/ HTTP/1.1\r\nHost: proxy:5080\r\n\r\n");
  ASSERT_EQ(host_.upstream_.dials.size(), 1u);
  std::string sent = connect(0);
  EXPECT_EQ(request_line_of(sent), "GET /v2/ HTTP/1.1");
  EXPECT_NE(sent.find("\r\nX-Forwarded-For: 192.0.2.7\r\n"), std::string::npos) << sent;
  upstream(0).deliver(kOkJson);
  EXPECT_EQ(client_log_->sent, kOkJson);
  EXPECT_EQ(host_.upstream_.idle_count(), 1u);  // given back clean

  client_->deliver("GET /v2/library/alpine/manifests/3.19 HTTP/1.1\r\nHost: proxy:5080\r\n\r\n");
  ASSERT_EQ(host_.upstream_.dials.size(), 1u) << "the pooled connection was not reused";
  EXPECT_EQ(request_line_of(upstream_log(0).sent.substr(sent.size())),
            "GET /v2/library/alpine/manifests/3.19 HTTP/1.1");
  upstream(0).deliver("HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nno\n");
  EXPECT_EQ(client_log_->sent, std::string(kOkJson) + "HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nno\n");

  ASSERT_EQ(host_.records.size(), 2u);
  EXPECT_EQ(host_.records[0].handler, Handler::base);
  EXPECT_EQ(host_.records[0].status, 200);
  EXPECT_EQ(host_.records[0].response_body_bytes, 2u);
  EXPECT_EQ(host_.records[1].handler, Handler::manifest);
  EXPECT_EQ(host_.records[1].repository, "library/alpine");
  EXPECT_EQ(host_.records[1].status, 404);
  EXPECT_EQ(host_.records[1].response_body_bytes, 3u);
  EXPECT_FALSE(closed());
  EXPECT_DOUBLE_EQ(host_.timer_->armed_for, host_.config_.idle_timeout_s);  // waiting for a third
}

TEST_F(EngineTest, PipelinedRequestsAreAnsweredInOrder) {
  client_->deliver(
      "GET /v2/a/tags/list HTTP/1.1\r\nHost: p\r\n\r\n"
      "GET /v2/b/tags/list HTTP/1.1\r\nHost: p\r\n\r\n");
  std::string first = connect(0);
  EXPECT_EQ(request_line_of(first), "GET /v2/a/tags/list HTTP/1.1");
  EXPECT_EQ(first.find("/v2/b/"), std::string::npos) << "second request sent before the first was answered";
  upstream(0).deliver("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na");
  // The second goes out on the same connection once the first is done.
  ASSERT_EQ(host_.upstream_.dials.size(), 1u);
  EXPECT_EQ(request_line_of(upstream_log(0).sent.substr(first.size())), "GET /v2/b/tags/list HTTP/1.1");
  upstream(0).deliver("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb");
  EXPECT_EQ(client_log_->sent,
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na"
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb");
  ASSERT_EQ(host_.records.size(), 2u);
  EXPECT_EQ(host_.records[0].repository, "a");
  EXPECT_EQ(host_.records[1].repository, "b");
  EXPECT_EQ(host_.records[1].handler, Handler::tags);
}

TEST_F(EngineTest, ExpectContinueIsRelayedBeforeTheBody) {
  client_->deliver(
      "PUT /v2/r/blobs/uploads/u1?digest=sha256:00 HTTP/1.1\r\nHost: p\r\nContent-Length: 5\r\n"
      "Expect: 100-continue\r\n\r\n");
  std::string head = connect(0);
  EXPECT_NE(head.find("\r\nExpect: 100-continue\r\n"), std::string::npos) << head;
  upstream(0).deliver("HTTP/1.1 100 Continue\r\n\r\n");
  EXPECT_EQ(client_log_->sent, "HTTP/1.1 100 Continue\r\n\r\n");
  client_->deliver("hello");
  EXPECT_EQ(upstream_log(0).sent, head + "hello");
  upstream(0).deliver("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(client_log_->sent, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
  ASSERT_EQ(host_.records.size(), 1u);
  EXPECT_EQ(host_.records[0].handler, Handler::blob_upload_chunk);
  EXPECT_EQ(host_.records[0].status, 201);
  EXPECT_EQ(host_.records[0].request_body_bytes, 5u);
  EXPECT_FALSE(closed());
}

TEST_F(EngineTest, HeadAnd204And304CarryNoBody) {
  // HEAD: the Content-Length describes the GET's body, none follows.
  client_->deliver("HEAD /v2/r/blobs/sha256:ab HTTP/1.1\r\nHost: p\r\n\r\n");
  connect(0);
  upstream(0).deliver("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n");
  ASSERT_EQ(host_.records.size(), 1u);
  client_->deliver("DELETE /v2/r/manifests/sha256:ab HTTP/1.1\r\nHost: p\r\n\r\n");
  upstream(0).deliver("HTTP/1.1 204 No Content\r\n\r\n");
  ASSERT_EQ(host_.records.size(), 2u);
  client_->deliver("GET /v2/r/manifests/1 HTTP/1.1\r\nHost: p\r\nIf-None-Match: \"x\"\r\n\r\n");
  upstream(0).deliver("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n");
  ASSERT_EQ(host_.records.size(), 3u);

  EXPECT_EQ(client_log_->sent,
            "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"
            "HTTP/1.1 204 No Content\r\n\r\n"
            "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n");
  EXPECT_EQ(host_.upstream_.dials.size(), 1u);  // each answer ended at its head: the connection stayed usable
  EXPECT_EQ(host_.records[0].method, Method::head);
  EXPECT_EQ(host_.records[0].status, 200);
  EXPECT_EQ(host_.records[1].status, 204);
  EXPECT_EQ(host_.records[2].status, 304);
  for (const auto& r : host_.records) EXPECT_EQ(r.response_body_bytes, 0u);
  EXPECT_FALSE(closed());
}

TEST_F(EngineTest, EarlyAnswerWhileTheBodyArrivesClosesAfterLingering) {
  client_->deliver("PUT /v2/r/blobs/uploads/u1?digest=sha256:00 HTTP/1.1\r\nHost: p\r\nContent-Length: 100000\r\n\r\n");
  std::string head = connect(0);
  client_->deliver(std::string(10, 'x'));
  upstream(0).deliver("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n");
  // The rest of the body cannot be told from a next request: the answer
  // says the connection closes, the upstream connection is not reused.
  EXPECT_EQ(client_log_->sent, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(host_.upstream_.idle_count(), 0u);
  EXPECT_TRUE(upstream_log(0).destroyed);
  ASSERT_EQ(host_.records.size(), 1u);
  EXPECT_EQ(host_.records[0].status, 401);
  EXPECT_EQ(host_.records[0].request_body_bytes, 10u);
  // Lingering: writes shut, what still arrives is read and dropped, then closed.
  EXPECT_TRUE(client_log_->write_shut);
  EXPECT_FALSE(closed());
  EXPECT_DOUBLE_EQ(host_.timer_->armed_for, 2.0);
  client_->deliver(std::string(5000, 'y'));
  EXPECT_EQ(evbuffer_get_length(client_->input()), 0u);
  EXPECT_TRUE(client_->reading());
  EXPECT_EQ(upstream_log(0).sent, head + std::string(10, 'x'));
  host_.timer_->fire();
  EXPECT_TRUE(closed());
  EXPECT_TRUE(client_log_->destroyed);
  EXPECT_EQ(host_.records.size(), 1u);
}

TEST_F(EngineTest, ClientAbortMidBodyIsRecordedOnceAsClientClosed) {
  client_->deliver("PATCH /v2/r/blobs/uploads/u1 HTTP/1.1\r\nHost: p\r\nContent-Length: 100\r\n\r\n");
  std::string head = connect(0);
  client_->deliver(std::string(10, 'x'));
  EXPECT_EQ(upstream_log(0).sent, head + std::string(10, 'x'));
  client_->close_from_peer();
  EXPECT_TRUE(closed());
  EXPECT_TRUE(upstream_log(0).destroyed) << "the half-sent upload must not be completed upstream";
  EXPECT_EQ(host_.upstream_.idle_count(), 0u);
  ASSERT_EQ(host_.records.size(), 1u);
  EXPECT_EQ(host_.records[0].status, 0);  // no answer: the shard counts it as kClientClosedStatus
  EXPECT_EQ(host_.records[0].request_body_bytes, 10u);
  EXPECT_EQ(host_.records[0].handler, Handler::blob_upload_chunk);
  std::vector<std::string> lines = host_.access_lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("\"status\":" + std::to_string(kClientClosedStatus)), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("\"request_bytes\":10"), std::string::npos) << lines[0];
}

TEST_F(EngineTest, UpstreamDyingMidResponseClosesTheClient) {
  client_->deliver("GET /v2/r/blobs/sha256:ab HTTP/1.1\r\nHost: p\r\n\r\n");
  connect(0);
  upstream(0).deliver("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + std::string(10, 'b'));
  upstream(0).close_from_peer();
  // A visibly truncated transfer: what came, then the connection closes.
  EXPECT_EQ(client_log_->sent, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + std::string(10, 'b'));
  EXPECT_TRUE(closed());
  EXPECT_TRUE(client_log_->destroyed);
  ASSERT_EQ(host_.records.size(), 1u);
  EXPECT_EQ(host_.records[0].status, 200);
  EXPECT_EQ(host_.records[0].response_body_bytes, 10u);
  EXPECT_TRUE(host_.records[0].reached_upstream);
}

TEST_F(EngineTest, StalePooledConnectionIsRetriedOnceOnAFreshOne) {
  client_->deliver("GET /v2/ HTTP/1.1\r\nHost: p\r\n\r\n");
  connect(0);
  upstream(0).deliver(kOkJson);
  ASSERT_EQ(host_.upstream_.idle_count(), 1u);
  std::size_t before = upstream_log(0).sent.size();
  client_->deliver("GET /v2/r/tags/list HTTP/1.1\r\nHost: p\r\n\r\n");
  ASSERT_EQ(host_.upstream_.dials.size(), 1u);
  upstream(0).close_from_peer();  // the registry had closed it: no byte of an answer
  ASSERT_EQ(host_.upstream_.dials.size(), 2u) << "not replayed on a fresh connection";
  std::string replayed = connect(1);
  EXPECT_EQ(replayed, upstream_log(0).sent.substr(before));  // the same request head, byte for byte
  upstream(1).deliver("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]");
  EXPECT_EQ(client_log_->sent, std::string(kOkJson) + "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]");
  ASSERT_EQ(host_.records.size(), 2u);
  EXPECT_EQ(host_.records[1].status, 200);
  EXPECT_EQ(host_.records[1].handler, Handler::tags);
  EXPECT_FALSE(closed());
}

TEST_F(EngineTest, RetriedOnlyOnce) {
  client_->deliver("GET /v2/ HTTP/1.1\r\nHost: p\r\n\r\n");
  connect(0);
  upstream(0).deliver(kOkJson);
  client_->deliver("GET /v2/ HTTP/1.1\r\nHost: p\r\n\r\n");
  upstream(0).close_from_peer();
  connect(1);
  upstream(1).close_from_peer();  // a fresh connection failing is the registry's answer
  EXPECT_EQ(host_.upstream_.dials.size(), 2u);
  EXPECT_NE(client_log_->sent.find("HTTP/1.1 502 Bad Gateway\r\n"), std::string::npos) << client_log_->sent;
  ASSERT_EQ(host_.records.size(), 2u);
  EXPECT_EQ(host_.records[1].status, 502);
  EXPECT_FALSE(host_.records[1].reached_upstream);
}

TEST_F(EngineTest, SlowClientPausesUpstreamReadingUntilDrained) {
  host_.limits_.high_watermark = 64;
  host_.limits_.low_watermark = 16;
  client_->hold_output = true;
  client_->deliver("GET /v2/r/blobs/sha256:ab HTTP/1.1\r\nHost: p\r\n\r\n");
  connect(0);
  EXPECT_TRUE(upstream(0).reading());
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 300\r\n\r\n";
  upstream(0).deliver(head + std::string(100, 'b'));
  EXPECT_GE(client_->pending_output(), 64u);
  EXPECT_FALSE(upstream(0).reading()) << "client output over the high mark must stop upstream reads";
  client_->drain();
  EXPECT_TRUE(upstream(0).reading()) << "drained: upstream reads resume";
  upstream(0).deliver(std::string(200, 'b'));
  EXPECT_TRUE(host_.records.empty()) << "finished before the last byte reached the client";
  client_->drain();
  EXPECT_EQ(client_log_->sent, head + std::string(300, 'b'));
  ASSERT_EQ(host_.records.size(), 1u);
  EXPECT_EQ(host_.records[0].response_body_bytes, 300u);
}

TEST_F(EngineTest, SlowUpstreamPausesClientReadingUntilDrained) {
  host_.limits_.high_watermark = 64;
  host_.limits_.low_watermark = 16;
  client_->deliver("PATCH /v2/r/blobs/uploads/u1 HTTP/1.1\r\nHost: p\r\nContent-Length: 300\r\n\r\n");
  upstream(0).hold_output = true;
  connect(0);
  upstream(0).drain();  // the head went out
  std::size_t head_size = upstream_log(0).sent.size();
  EXPECT_TRUE(client_->reading());
  client_->deliver(std::string(100, 'x'));
  EXPECT_FALSE(client_->reading()) << "upstream send queue over the high mark must stop client reads";
  upstream(0).drain();
  EXPECT_TRUE(client_->reading());
  client_->deliver(std::string(200, 'x'));
  upstream(0).drain();
  EXPECT_EQ(upstream_log(0).sent.size(), head_size + 300);
  upstream(0).deliver("HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
  ASSERT_EQ(host_.records.size(), 1u);
  EXPECT_EQ(host_.records[0].request_body_bytes, 300u);
  EXPECT_EQ(host_.records[0].status, 202);
}

TEST_F(EngineTest, NoResponseWithinTheUpstreamTimeoutIs504) {
  client_->deliver("GET /v2/ HTTP/1.1\r\nHost: p\r\n\r\n");
  EXPECT_DOUBLE_EQ(host_.timer_->armed_for, host_.config_.upstream_connect_timeout_s);
  connect(0);
  EXPECT_DOUBLE_EQ(host_.timer_->armed_for, host_.config_.upstream_timeout_s);
  host_.timer_->fire();
  EXPECT_EQ(client_log_->sent.substr(0, client_log_->sent.find("\r\n")), "HTTP/1.1 504 Gateway Timeout");
  EXPECT_NE(client_log_->sent.find(R"("message":"upstream registry timed out")"), std::string::npos);
  EXPECT_TRUE(upstream_log(0).destroyed);
  ASSERT_EQ(host_.records.size(), 1u);
  EXPECT_EQ(host_.records[0].status, 504);
  EXPECT_FALSE(host_.records[0].reached_upstream);
  EXPECT_FALSE(closed());
}

TEST_F(EngineTest, QueuedRequestGets503WithRetryAfterAtTheQueueTimeout) {
  host_.upstream_.at_cap = true;
  client_->deliver("GET /v2/ HTTP/1.1\r\nHost: p\r\n\r\n");
  ASSERT_EQ(host_.upstream_.waiting.size(), 1u);
  EXPECT_DOUBLE_EQ(host_.timer_->armed_for, host_.config_.upstream_queue_timeout_s);
  host_.timer_->fire();
  EXPECT_TRUE(host_.upstream_.waiting.empty()) << "left the queue";
  EXPECT_EQ(client_log_->sent.substr(0, client_log_->sent.find("\r\n")), "HTTP/1.1 503 Service Unavailable");
  EXPECT_NE(client_log_->sent.find("\r\nRetry-After: 10\r\n"), std::string::npos) << client_log_->sent;
  ASSERT_EQ(host_.records.size(), 1u);
  EXPECT_EQ(host_.records[0].status, 503);
}

TEST_F(EngineTest, ClientLeavingTheQueueCancelsItsWait) {
  host_.upstream_.at_cap = true;
  client_->deliver("GET /v2/ HTTP/1.1\r\nHost: p\r\n\r\n");
  ASSERT_EQ(host_.upstream_.waiting.size(), 1u);
  client_->close_from_peer();  // a half-close after a whole request: it is still answered
  EXPECT_FALSE(closed());
  EXPECT_EQ(host_.upstream_.waiting.size(), 1u);
  client_->reset_by_peer();
  EXPECT_TRUE(closed());
  EXPECT_TRUE(host_.upstream_.waiting.empty());
  ASSERT_EQ(host_.records.size(), 1u);
  EXPECT_EQ(host_.records[0].status, 0);
}

TEST_F(EngineTest, LocalRefusalsAreAnsweredHere) {
  client_->deliver("GET /v2/a/../b/manifests/1 HTTP/1.1\r\nHost: p\r\n\r\n");
  EXPECT_TRUE(host_.upstream_.dials.empty());
  EXPECT_EQ(client_log_->sent.substr(0, client_log_->sent.find("\r\n")), "HTTP/1.1 400 Bad Request");
  EXPECT_NE(client_log_->sent.find("\"code\":\"NAME_INVALID\""), std::string::npos) << client_log_->sent;
  ASSERT_EQ(host_.records.size(), 1u);
  EXPECT_EQ(host_.records[0].handler, Handler::other);
  EXPECT_EQ(host_.records[0].status, 400);
  EXPECT_FALSE(host_.records[0].reached_upstream);
  EXPECT_FALSE(closed());  // the request was read to its end: keep-alive
}

TEST_F(EngineTest, HeaderTimeoutRejectsTheConnection) {
  client_->deliver("GET /v2/ HTTP/1.1\r\nHo");
  EXPECT_DOUBLE_EQ(host_.timer_->armed_for, host_.config_.header_timeout_s);
  host_.timer_->fire();
  EXPECT_EQ(client_log_->sent.substr(0, client_log_->sent.find("\r\n")), "HTTP/1.1 408 Request Timeout");
  EXPECT_TRUE(host_.records.empty()) << "a rejected connection is not a request";
}

// Shutdown (SIGTERM, a --reuse-port restart): a connection idle between
// requests closes at once; one that has not sent its first request yet may
// have it in flight, so it gets a short grace and one answer, with
// Connection: close, instead of a reset.
TEST_F(EngineTest, ShutdownClosesAnIdleKeepAliveConnectionAtOnce) {
  client_->deliver("GET /v2/ HTTP/1.1\r\nHost: p\r\n\r\n");
  connect(0);
  upstream(0).deliver(kOkJson);
  ASSERT_EQ(host_.records.size(), 1u);
  EXPECT_FALSE(closed());
  connection_->begin_shutdown();
  EXPECT_TRUE(closed());
}

TEST_F(EngineTest, ShutdownLetsAFreshConnectionSendItsFirstRequest) {
  connection_->begin_shutdown();
  EXPECT_FALSE(closed()) << "a just-accepted connection was closed before its request could arrive";
  EXPECT_DOUBLE_EQ(host_.timer_->armed_for, ClientConnection::kFirstRequestGraceOnShutdown);
  client_->deliver("GET /v2/ HTTP/1.1\r\nHost: p\r\n\r\n");
  connect(0);
  upstream(0).deliver(kOkJson);
  ASSERT_EQ(host_.records.size(), 1u);
  EXPECT_EQ(host_.records[0].status, 200);
  EXPECT_NE(client_log_->sent.find("\r\nConnection: close\r\n"), std::string::npos) << client_log_->sent;
  EXPECT_TRUE(closed()) << "not closed after the one request it was given";
}

TEST_F(EngineTest, ShutdownClosesAFreshConnectionThatSendsNothing) {
  connection_->begin_shutdown();
  EXPECT_FALSE(closed());
  host_.timer_->fire();
  EXPECT_TRUE(closed());
  EXPECT_TRUE(host_.records.empty());
}

}  // namespace
}  // namespace regmeter
