// The admin endpoints over a real socket: the server runs on an event loop
// in a background thread, the test talks raw HTTP/1.1 to it.
#include "app/admin_server.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <cctype>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include <rapidjson/document.h>

#include "app/dashboard_history.h"
#include "core/metrics.h"

namespace regmeter {
namespace {

struct Reply {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Sends one request with Connection: close and reads the reply to EOF.
Reply exchange_raw(std::uint16_t port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket");
  timeval timeout{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    throw std::runtime_error("connect");
  }
  for (std::size_t sent = 0; sent < request.size();) {
    auto n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  std::string raw;
  char buf[16384];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) raw.append(buf, static_cast<std::size_t>(n));
  ::close(fd);

  Reply reply;
  auto head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos) return reply;
  reply.body = raw.substr(head_end + 4);
  auto line_end = raw.find("\r\n");
  reply.status = std::stoi(raw.substr(raw.find(' ') + 1, 3));
  for (auto pos = line_end + 2; pos < head_end;) {
    auto end = raw.find("\r\n", pos);
    auto line = raw.substr(pos, end - pos);
    auto colon = line.find(':');
    reply.headers[lower(line.substr(0, colon))] = line.substr(line.find_first_not_of(' ', colon + 1));
    pos = end + 2;
  }
  return reply;
}

Reply request(std::uint16_t port, const std::string& method, const std::string& target,
              const std::string& extra_headers = "") {
  return exchange_raw(port, method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" +
                                extra_headers + "\r\n");
}

std::string gunzip(const std::string& in) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 16) != Z_OK) return "<inflateInit2 failed>";
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  std::string out;
  char buf[16384];
  int rc = Z_OK;
  while (rc == Z_OK) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof buf;
    rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buf, sizeof buf - zs.avail_out);
  }
  inflateEnd(&zs);
  return rc == Z_STREAM_END ? out : "<corrupt gzip>";
}

class AdminServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { evthread_use_pthreads(); }  // so loopbreak wakes the loop from here

  void SetUp() override {
    base_ = event_base_new();
    ASSERT_NE(base_, nullptr);
    server_ = std::make_unique<AdminServer>(base_, "127.0.0.1", 0, metrics_, [this] { return healthy_.load(); });
    loop_ = std::thread([this] { event_base_loop(base_, EVLOOP_NO_EXIT_ON_EMPTY); });
    // The loop clears a pending break when it starts, so TearDown's break
    // only sticks once the loop is running: wait for a callback from it.
    std::promise<void> running;
    timeval now{0, 0};
    event_base_once(
        base_, -1, EV_TIMEOUT, [](evutil_socket_t, short, void* p) { static_cast<std::promise<void>*>(p)->set_value(); },
        &running, &now);
    running.get_future().wait();
  }

  void TearDown() override {
    event_base_loopbreak(base_);
    loop_.join();
    server_.reset();  // evhttp_free with the loop stopped
    event_base_free(base_);
  }

  void record(Handler handler, Method method, int status) {
    Exchange e;
    e.handler = handler;
    e.method = method;
    e.status = status;
    e.started = Clock::now();
    e.finished = e.started + std::chrono::milliseconds(3);
    metrics_.shard(1).request_started(handler);
    metrics_.shard(1).request_finished(e);
  }

  std::uint16_t port() const { return server_->port(); }

  // Runs fn on the loop's thread and waits for it.
  void on_loop(std::function<void()> fn) {
    std::promise<void> done;
    struct Call {
      std::function<void()>* fn;
      std::promise<void>* done;
    } call{&fn, &done};
    timeval now{0, 0};
    event_base_once(
        base_, -1, EV_TIMEOUT,
        [](evutil_socket_t, short, void* p) {
          auto* c = static_cast<Call*>(p);
          (*c->fn)();
          c->done->set_value();
        },
        &call, &now);
    done.get_future().wait();
  }

  Metrics metrics_{2};
  std::atomic<bool> healthy_{true};
  event_base* base_ = nullptr;
  std::unique_ptr<AdminServer> server_;
  std::thread loop_;
};

TEST_F(AdminServerTest, BindsAnEphemeralPort) { EXPECT_NE(port(), 0); }

TEST_F(AdminServerTest, MetricsPlain) {
  record(Handler::manifest, Method::get, 200);
  auto reply = request(port(), "GET", "/metrics");
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(reply.headers.count("content-encoding"), 0u);
  EXPECT_EQ(reply.headers["content-length"], std::to_string(reply.body.size()));
  EXPECT_EQ(reply.body, metrics_.render_text());
  EXPECT_NE(reply.body.find(R"(registry_http_requests_total{code="200",handler="manifest",method="get"} 1)"),
            std::string::npos);
}

TEST_F(AdminServerTest, MetricsGzipWhenAccepted) {
  record(Handler::blob, Method::head, 404);
  auto reply = request(port(), "GET", "/metrics", "Accept-Encoding: deflate, GZIP;q=0.5\r\n");
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.headers["content-encoding"], "gzip");
  EXPECT_EQ(reply.headers["vary"], "Accept, Accept-Encoding");
  EXPECT_EQ(reply.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_LT(reply.body.size(), metrics_.render_text().size());
  EXPECT_EQ(gunzip(reply.body), metrics_.render_text());
}

TEST_F(AdminServerTest, MetricsFormatFollowsAccept) {
  record(Handler::manifest, Method::get, 200);
  // What a default Prometheus 2.x asks for: OpenMetrics, ending in # EOF.
  auto om = request(port(), "GET", "/metrics",
                    "Accept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
                    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n");
  EXPECT_EQ(om.status, 200);
  EXPECT_EQ(om.headers["content-type"], "application/openmetrics-text; version=1.0.0; charset=utf-8");
  EXPECT_EQ(om.headers["vary"], "Accept, Accept-Encoding");
  EXPECT_EQ(om.body, metrics_.render(ExpositionFormat::openmetrics));
  ASSERT_GE(om.body.size(), 6u);
  EXPECT_EQ(om.body.substr(om.body.size() - 6), "# EOF\n");
  // With native histograms on: protobuf, gzipped when accepted.
  auto pb = request(port(), "GET", "/metrics",
                    "Accept: application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
                    "encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8\r\n"
                    "Accept-Encoding: gzip\r\n");
  EXPECT_EQ(pb.status, 200);
  EXPECT_EQ(pb.headers["content-type"],
            "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited");
  EXPECT_EQ(pb.headers["content-encoding"], "gzip");
  EXPECT_EQ(gunzip(pb.body), metrics_.render(ExpositionFormat::protobuf));
  // curl's */*: the text format, byte for byte.
  auto text = request(port(), "GET", "/metrics", "Accept: */*\r\n");
  EXPECT_EQ(text.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(text.body, metrics_.render_text());
}

TEST_F(AdminServerTest, MetricsPlainWhenGzipRefused) {
  for (const char* accept : {"Accept-Encoding: gzip;q=0\r\n", "Accept-Encoding: deflate, br\r\n",
                             "Accept-Encoding: gzipx\r\n"}) {
    auto reply = request(port(), "GET", "/metrics", accept);
    EXPECT_EQ(reply.status, 200) << accept;
    EXPECT_EQ(reply.headers.count("content-encoding"), 0u) << accept;
    EXPECT_EQ(reply.body, metrics_.render_text()) << accept;
  }
}

TEST_F(AdminServerTest, QueryStringIsIgnored) {
  EXPECT_EQ(request(port(), "GET", "/metrics?name[]=x").status, 200);
}

TEST_F(AdminServerTest, HeadHasLengthButNoBody) {
  auto reply = request(port(), "HEAD", "/metrics");
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.headers["content-length"], std::to_string(metrics_.render_text().size()));
  EXPECT_EQ(reply.body, "");
}

TEST_F(AdminServerTest, HealthzFollowsTheCallback) {
  auto ok = request(port(), "GET", "/healthz");
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, "ok\n");
  EXPECT_EQ(ok.headers["content-type"], "text/plain; charset=utf-8");

  healthy_ = false;
  EXPECT_EQ(request(port(), "GET", "/healthz").status, 503);
  healthy_ = true;
  EXPECT_EQ(request(port(), "HEAD", "/healthz").status, 200);
}

TEST_F(AdminServerTest, DashboardServesTheEmbeddedPage) {
  auto reply = request(port(), "GET", "/dashboard");
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.headers["content-type"], "text/html; charset=utf-8");
  EXPECT_EQ(reply.headers["cache-control"], "no-store");
  EXPECT_EQ(reply.headers["x-content-type-options"], "nosniff");
  EXPECT_EQ(reply.headers.count("content-encoding"), 0u);
  EXPECT_EQ(reply.headers["content-length"], std::to_string(reply.body.size()));
  EXPECT_EQ(reply.body.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(reply.body.find("<canvas id=\"heatmap\">"), std::string::npos);
  EXPECT_NE(reply.body.find("fetch(\"metrics\""), std::string::npos) << "the page polls /metrics, relative to itself";
  EXPECT_NE(reply.body.find("fetch(\"dashboard/history\""), std::string::npos) << "the page loads the history first";
  EXPECT_NE(reply.body.find("last hour"), std::string::npos);

  // A hash-based policy: nothing from elsewhere, no inline code but the page's own.
  const auto& csp = reply.headers["content-security-policy"];
  EXPECT_EQ(csp.rfind("default-src 'none'; script-src 'sha256-", 0), 0u) << csp;
  EXPECT_NE(csp.find("style-src 'sha256-"), std::string::npos) << csp;
  EXPECT_NE(csp.find("connect-src 'self'"), std::string::npos) << csp;
  EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << csp;
  EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos) << csp;
  EXPECT_EQ(csp.find("unsafe-eval"), std::string::npos) << csp;
}

TEST_F(AdminServerTest, DashboardGzipAndHead) {
  auto plain = request(port(), "GET", "/dashboard");
  ASSERT_EQ(plain.status, 200);
  for (int i = 0; i < 2; ++i) {  // the compressed page is cached after the first
    auto zipped = request(port(), "GET", "/dashboard", "Accept-Encoding: gzip, deflate, br\r\n");
    EXPECT_EQ(zipped.status, 200);
    EXPECT_EQ(zipped.headers["content-encoding"], "gzip");
    EXPECT_EQ(zipped.headers["vary"], "Accept-Encoding");
    EXPECT_EQ(zipped.headers["content-type"], "text/html; charset=utf-8");
    EXPECT_EQ(zipped.headers["content-security-policy"], plain.headers["content-security-policy"]);
    EXPECT_LT(zipped.body.size(), plain.body.size() / 2);
    EXPECT_EQ(gunzip(zipped.body), plain.body);
  }
  auto head = request(port(), "HEAD", "/dashboard");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.headers["content-length"], std::to_string(plain.body.size()));
  EXPECT_EQ(head.headers["content-type"], "text/html; charset=utf-8");
  EXPECT_FALSE(head.headers["content-security-policy"].empty());
  EXPECT_EQ(head.body, "");

  EXPECT_EQ(request(port(), "GET", "/dashboard?interval=1").status, 200);
  for (const char* target : {"/dashboard/", "/dashboardx", "/dashboard/metrics"})
    EXPECT_EQ(request(port(), "GET", target).status, 404) << target;
  auto post = request(port(), "POST", "/dashboard", "Content-Length: 0\r\n");
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(post.headers["allow"], "GET, HEAD");
}

TEST_F(AdminServerTest, LandingPageLinksTheEndpoints) {
  auto reply = request(port(), "GET", "/");
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.headers["content-type"], "text/html; charset=utf-8");
  EXPECT_EQ(reply.headers["content-security-policy"], "default-src 'none'");
  EXPECT_EQ(reply.body.rfind("<!DOCTYPE html>", 0), 0u);
  // Relative links, so the page also works behind a path-prefixing proxy.
  for (const char* link : {"href=\"dashboard\"", "href=\"metrics\"", "href=\"healthz\""})
    EXPECT_NE(reply.body.find(link), std::string::npos) << link;
  EXPECT_EQ(reply.body.find("<script"), std::string::npos);
  auto head = request(port(), "HEAD", "/");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.headers["content-length"], std::to_string(reply.body.size()));
  EXPECT_EQ(head.body, "");
  EXPECT_EQ(request(port(), "DELETE", "/").status, 405);
}

TEST_F(AdminServerTest, AddedRouteIsServedFreshPlainOrGzip) {
  int calls = 0;
  on_loop([&] {
    server_->add_route("/extra", "application/json", [&calls] { return "{\"n\":" + std::to_string(++calls) + "}"; });
  });
  auto first = request(port(), "GET", "/extra");
  EXPECT_EQ(first.status, 200);
  EXPECT_EQ(first.headers["content-type"], "application/json");
  EXPECT_EQ(first.headers["cache-control"], "no-store");
  EXPECT_EQ(first.body, "{\"n\":1}");
  auto zipped = request(port(), "GET", "/extra", "Accept-Encoding: gzip\r\n");
  EXPECT_EQ(zipped.headers["content-encoding"], "gzip");
  EXPECT_EQ(gunzip(zipped.body), "{\"n\":2}");  // built per request
  EXPECT_EQ(request(port(), "POST", "/extra", "Content-Length: 0\r\n").status, 405);
  EXPECT_EQ(request(port(), "GET", "/extra/").status, 404);
}

// Sums the cells of the history JSON's intervals (and the partial one) per family.
std::map<std::string, double> history_totals(const rapidjson::Document& d) {
  std::map<std::string, double> totals;
  auto sum = [&](const rapidjson::Value& interval) {
    for (const auto& cell : interval["cells"].GetArray())
      totals[d["columns"][cell[0].GetUint()]["family"].GetString()] += cell[1].GetDouble();
  };
  for (const auto& interval : d["intervals"].GetArray()) sum(interval);
  if (d["partial"].IsObject()) sum(d["partial"]);
  return totals;
}

// /dashboard/history as served: samples taken on the loop (by hand here; the
// timer's period is far longer than the test), bounded to window / interval.
TEST_F(AdminServerTest, DashboardHistoryCountsAndIsBounded) {
  std::unique_ptr<DashboardHistory> history;
  on_loop([&] {
    history = std::make_unique<DashboardHistory>(base_, metrics_, 100, 300);  // 3 intervals
    server_->add_route("/dashboard/history", "application/json", [h = history.get()] { return h->json(); });
  });
  auto fetch = [&] {
    auto reply = request(port(), "GET", "/dashboard/history");
    EXPECT_EQ(reply.status, 200);
    EXPECT_EQ(reply.headers["content-type"], "application/json");
    rapidjson::Document d;
    d.Parse(reply.body.c_str());
    EXPECT_FALSE(d.HasParseError()) << reply.body;
    return d;
  };
  auto d = fetch();
  EXPECT_EQ(d["capacity"].GetUint(), 3u);
  EXPECT_EQ(d["max_columns"].GetUint(), DashboardHistory::kMaxColumns);
  EXPECT_EQ(d["intervals"].Size(), 0u);  // only the baseline so far

  for (int i = 0; i < 4; ++i) record(Handler::blob_upload_chunk, Method::patch, 202);
  record(Handler::blob_upload_chunk, Method::put, 503);
  d = fetch();  // in the interval in progress, before any sample
  EXPECT_EQ(d["intervals"].Size(), 0u);
  auto totals = history_totals(d);
  EXPECT_EQ(totals["requests"], 5);
  EXPECT_EQ(totals["errors"], 1);
  EXPECT_EQ(totals["upload_latency"], 5);

  on_loop([&] { history->sample(); });
  record(Handler::manifest, Method::get, 200);
  on_loop([&] { history->sample(); });
  d = fetch();
  EXPECT_EQ(d["intervals"].Size(), 2u);
  totals = history_totals(d);
  EXPECT_EQ(totals["requests"], 6);
  EXPECT_EQ(totals["upload_latency"], 5);

  on_loop([&] { for (int i = 0; i < 5; ++i) history->sample(); });
  d = fetch();
  EXPECT_EQ(d["intervals"].Size(), 3u);  // the ring's bound
  EXPECT_EQ(history_totals(d)["requests"], 0);  // those intervals have dropped out
  on_loop([&] { history.reset(); });
}

// The timer samples on its own.
TEST_F(AdminServerTest, DashboardHistoryTimerSamples) {
  std::unique_ptr<DashboardHistory> history;
  on_loop([&] { history = std::make_unique<DashboardHistory>(base_, metrics_, 0.02, 0.06); });
  std::size_t stored = 0;
  for (int tries = 0; tries < 500 && stored < 3; ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    on_loop([&] { stored = history->history().intervals().size(); });
  }
  EXPECT_EQ(stored, 3u);
  on_loop([&] { history.reset(); });
}

TEST_F(AdminServerTest, UnknownPathsAre404) {
  for (const char* target : {"/metricsx", "/metrics/", "/v2/", "/healthz/x", "/dashboard/history", "//"}) {
    auto reply = request(port(), "GET", target);
    EXPECT_EQ(reply.status, 404) << target;
    EXPECT_EQ(reply.headers["content-type"], "text/plain; charset=utf-8") << target;
  }
  EXPECT_EQ(request(port(), "POST", "/nope").status, 404);
}

TEST_F(AdminServerTest, OtherMethodsAre405WithAllow) {
  for (const char* method : {"POST", "PUT", "DELETE", "OPTIONS", "PATCH"}) {
    auto reply = request(port(), method, "/metrics", "Content-Length: 0\r\n");
    EXPECT_EQ(reply.status, 405) << method;
    EXPECT_EQ(reply.headers["allow"], "GET, HEAD") << method;
  }
  EXPECT_EQ(request(port(), "DELETE", "/healthz").status, 405);
}

TEST_F(AdminServerTest, OversizedHeadersAreRejected) {
  auto reply = request(port(), "GET", "/metrics", "X-Big: " + std::string(20000, 'a') + "\r\n");
  EXPECT_NE(reply.status, 200);
}

TEST_F(AdminServerTest, BindFailureNamesTheAddress) {
  // A base of its own: the running one belongs to the loop thread.
  std::unique_ptr<event_base, decltype(&event_base_free)> other(event_base_new(), &event_base_free);
  try {
    AdminServer second(other.get(), "127.0.0.1", port(), metrics_, nullptr);
    FAIL() << "second bind on the same port succeeded";
  } catch (const std::runtime_error& e) {
    std::string expected = "metrics-listen 127.0.0.1:" + std::to_string(port()) + ": Address already in use";
    EXPECT_EQ(std::string(e.what()), expected);
  }
  try {
    AdminServer bad(other.get(), "host.invalid", 9999, metrics_, nullptr);
    FAIL() << "bind to an unresolvable host succeeded";
  } catch (const std::runtime_error& e) {
    std::string what = e.what();
    EXPECT_EQ(what.rfind("metrics-listen host.invalid:9999: ", 0), 0u) << what;
    EXPECT_GT(what.size(), std::string("metrics-listen host.invalid:9999: ").size()) << "no reason given";
  }
}

TEST_F(AdminServerTest, BracketedIpv6HostIsAccepted) {
  std::unique_ptr<event_base, decltype(&event_base_free)> other(event_base_new(), &event_base_free);
  try {
    AdminServer v6(other.get(), "[::1]", 0, metrics_, nullptr);
    EXPECT_NE(v6.port(), 0);
  } catch (const std::runtime_error& e) {  // hosts without IPv6 loopback
    EXPECT_EQ(std::string(e.what()).rfind("metrics-listen [::1]:0: ", 0), 0u) << e.what();
  }
}

}  // namespace
}  // namespace regmeter
