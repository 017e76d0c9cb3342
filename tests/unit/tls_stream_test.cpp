// TlsStream end to end over loopback: a server and a client stream on one
// event_base, throwaway certificates made with the openssl CLI in a temp dir.
#include "net/tls_context.h"
#include "net/tls_stream.h"
#include "net/tls_session_cache.h"

#include <gtest/gtest.h>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <fmt/format.h>
#include <openssl/ssl.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <string_view>

namespace regmeter {
namespace {

namespace fs = std::filesystem;

// A CA and a leaf for 127.0.0.1 signed by it, and a second, unrelated CA.
class Pki {
 public:
  Pki() {
    char pattern[] = "/tmp/regmeter-tls-test.XXXXXX";
    if (!mkdtemp(pattern)) return;
    dir_ = pattern;
    std::string d = dir_.string();
    std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -sha256";
    std::string script =
        "cd '" + d + "' && {" +
        " openssl req -x509 -new" + ec + " -keyout ca.key -out ca.crt -subj /CN=test-ca"
        "   -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign &&"
        " openssl req -x509 -new" + ec + " -keyout other.key -out other.crt -subj /CN=other-ca"
        "   -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign &&"
        " printf 'basicConstraints=critical,CA:FALSE\\nkeyUsage=critical,digitalSignature\\n"
        "extendedKeyUsage=serverAuth\\nsubjectAltName=IP:127.0.0.1\\n' > leaf.ext &&"
        " openssl req -new" + ec + " -keyout leaf.key -out leaf.csr -subj /CN=localhost &&"
        " openssl x509 -req -in leaf.csr -CA ca.crt -CAkey ca.key -set_serial 7 -days 2 -sha256"
        "   -extfile leaf.ext -out leaf.crt; } >openssl.log 2>&1";
    ok_ = std::system(script.c_str()) == 0;
  }
  ~Pki() {
    std::error_code ignored;
    if (!dir_.empty()) fs::remove_all(dir_, ignored);
  }
  bool ok() const { return ok_; }
  std::string file(const char* name) const { return (dir_ / name).string(); }

 private:
  fs::path dir_;
  bool ok_ = false;
};

const Pki& pki() {
  static Pki instance;
  return instance;
}

std::uint64_t fnv1a(const std::string& bytes) {
  std::uint64_t hash = 1469598103934665603ull;
  for (unsigned char c : bytes) hash = (hash ^ c) * 1099511628211ull;
  return hash;
}

std::string random_bytes(std::size_t size, std::uint64_t seed) {
  std::mt19937_64 generator(seed);
  std::string out(size, '\0');
  for (std::size_t i = 0; i + 8 <= size; i += 8) {
    std::uint64_t word = generator();
    std::memcpy(&out[i], &word, 8);
  }
  return out;
}

// Records what a stream reports; takes all input as it arrives.
struct Recorder : StreamHandler {
  Stream* stream = nullptr;
  std::string received;
  bool connected = false;
  bool closed = false;
  std::string error;
  // Pause reading after every delivery and resume 1 ms later (backpressure).
  bool pause_each = false;
  event* resume = nullptr;

  void on_stream_readable(Stream& s) override {
    evbuffer* in = s.input();
    std::size_t n = evbuffer_get_length(in);
    std::size_t old = received.size();
    received.resize(old + n);
    evbuffer_remove(in, received.data() + old, n);
    if (s.peer_closed()) closed = true;
    if (pause_each && resume && !s.peer_closed()) {
      s.set_reading(false);
      timeval ms{0, 1000};
      event_add(resume, &ms);
    }
  }
  void on_stream_drained(Stream&) override {}
  void on_stream_error(Stream&, const std::string& what) override { error = what; }
  void on_stream_connected(Stream&) override { connected = true; }
  void on_plain_http_refused(Stream& s) override {
    refused_plain_http = true;
    s.set_reading(true);  // as ClientConnection's lingering close does
  }
  bool refused_plain_http = false;
};

class TlsStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pki().ok()) << "openssl CLI could not make the test certificates";
    base_ = event_base_new();
    tick_ = event_new(base_, -1, EV_PERSIST, [](int, short, void*) {}, nullptr);
    timeval ten_ms{0, 10000};
    event_add(tick_, &ten_ms);  // EVLOOP_ONCE returns at least every 10 ms
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    address_.sin_family = AF_INET;
    address_.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(0, ::bind(listener_, reinterpret_cast<sockaddr*>(&address_), sizeof address_));
    socklen_t length = sizeof address_;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address_), &length);
    ASSERT_EQ(0, ::listen(listener_, 8));
    server_context_ = make_server_context(pki().file("leaf.crt"), pki().file("leaf.key"), "");
  }
  void TearDown() override {
    client_.reset();
    server_.reset();
    for (Recorder* r : {&client_side_, &server_side_})
      if (r->resume) event_free(r->resume);
    if (listener_ >= 0) ::close(listener_);
    if (tick_) event_free(tick_);
    if (base_) event_base_free(base_);
  }

  // Runs the loop until `done` or 20 s.
  bool run_until(const std::function<bool()>& done) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      event_base_loop(base_, EVLOOP_ONCE);
    }
    return true;
  }

  int accept_one() {
    pollfd p{listener_, POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) return -1;
    return ::accept4(listener_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  }

  // Connects a client (trusting `ca`) to a server stream; does not wait for
  // the handshake.
  void connect_pair(const std::string& ca, TlsSessionCache* sessions = nullptr) {
    if (!client_context_) client_context_ = make_client_context(ca, false);
    std::string error;
    client_ = TlsStream::connect_to(base_, reinterpret_cast<sockaddr*>(&address_), sizeof address_,
                                    client_context_.get(), "127.0.0.1", &client_side_, error, sessions);
    ASSERT_TRUE(client_) << error;
    int fd = accept_one();
    ASSERT_GE(fd, 0);
    server_ = TlsStream::accept(base_, fd, server_context_.get(), &server_side_);
    ASSERT_TRUE(server_);
    client_side_.stream = client_.get();
    server_side_.stream = server_.get();
    for (Recorder* r : {&client_side_, &server_side_})
      r->resume = event_new(base_, -1, 0, [](int, short, void* arg) {
        auto* recorder = static_cast<Recorder*>(arg);
        recorder->stream->set_reading(true);
      }, r);
  }

  void connect_and_handshake(TlsSessionCache* sessions = nullptr) {
    connect_pair(pki().file("ca.crt"), sessions);
    server_->set_reading(true);
    client_->set_reading(true);
    ASSERT_TRUE(run_until([&] { return client_side_.connected && server_side_.connected; }))
        << "client error: " << client_side_.error << "; server error: " << server_side_.error;
  }

  void send(Stream& stream, const std::string& bytes) {
    evbuffer_add(stream.output(), bytes.data(), bytes.size());
    ASSERT_TRUE(stream.flush());
  }

  event_base* base_ = nullptr;
  event* tick_ = nullptr;
  int listener_ = -1;
  sockaddr_in address_{};
  SslContextPtr server_context_;
  SslContextPtr client_context_;
  Recorder client_side_;
  Recorder server_side_;
  std::unique_ptr<Stream> client_;
  std::unique_ptr<Stream> server_;
};

TEST_F(TlsStreamTest, HandshakeThenSmallExchangeAndIdle) {
  connect_and_handshake();
  EXPECT_FALSE(client_->handshake_failed());
  EXPECT_FALSE(server_->handshake_failed());
  send(*client_, "GET / HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(run_until([&] { return server_side_.received.size() == 18; }));
  send(*server_, "HTTP/1.1 204 No Content\r\n\r\n");
  ASSERT_TRUE(run_until([&] { return client_side_.received.size() == 27; }));
  EXPECT_EQ(client_side_.received, "HTTP/1.1 204 No Content\r\n\r\n");
  // Session tickets the server sent are not data: the client is idle.
  EXPECT_TRUE(client_->idle_and_alive());
  EXPECT_TRUE(client_side_.error.empty()) << client_side_.error;
  // Stray bytes while idle (reading off, so they stay inside): not idle.
  client_->set_reading(false);
  send(*server_, "x");
  run_until([&] { return evbuffer_get_length(server_->output()) == 0; });
  ASSERT_TRUE(run_until([&] { return !client_->idle_and_alive(); }));
}

// Toward the upstream: a second connection resumes the session the first
// one received (an abbreviated handshake), through the pool's cache.
int g_resumed_handshakes = 0;
int g_handshakes = 0;

TEST_F(TlsStreamTest, SecondConnectionResumesTheCachedSession) {
  g_resumed_handshakes = g_handshakes = 0;
  SSL_CTX_set_info_callback(server_context_.get(), [](const SSL* ssl, int where, int) {
    if (!(where & SSL_CB_HANDSHAKE_DONE)) return;
    ++g_handshakes;
    if (SSL_session_reused(const_cast<SSL*>(ssl))) ++g_resumed_handshakes;
  });
  TlsSessionCache sessions;
  connect_and_handshake(&sessions);
  // TLS 1.3 tickets arrive after the handshake: an exchange reads them.
  send(*client_, "GET / HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(run_until([&] { return server_side_.received.size() == 18; }));
  send(*server_, "HTTP/1.1 204 No Content\r\n\r\n");
  ASSERT_TRUE(run_until([&] { return client_side_.received.size() == 27 && sessions.has_session(); }));
  EXPECT_EQ(g_handshakes, 1);
  EXPECT_EQ(g_resumed_handshakes, 0);

  client_.reset();
  server_.reset();
  for (Recorder* r : {&client_side_, &server_side_}) {
    if (r->resume) event_free(r->resume);
    *r = Recorder{};
  }
  connect_and_handshake(&sessions);
  EXPECT_EQ(g_handshakes, 2);
  EXPECT_EQ(g_resumed_handshakes, 1) << "the second handshake did not resume";
  send(*client_, "GET / HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(run_until([&] { return server_side_.received.size() == 18; }));
}

TEST_F(TlsStreamTest, MultiMegabyteBothWaysWithBackpressure) {
  connect_and_handshake();
  const std::string up = random_bytes(6 * 1024 * 1024 + 13, 1);
  const std::string down = random_bytes(5 * 1024 * 1024 + 7, 2);
  server_side_.pause_each = true;  // reading toggles off and on all along
  send(*client_, up);
  send(*server_, down);
  ASSERT_TRUE(run_until([&] {
    return server_side_.received.size() >= up.size() && client_side_.received.size() >= down.size();
  })) << "server got " << server_side_.received.size() << ", client got " << client_side_.received.size();
  EXPECT_EQ(server_side_.received.size(), up.size());
  EXPECT_EQ(client_side_.received.size(), down.size());
  EXPECT_EQ(fnv1a(server_side_.received), fnv1a(up));
  EXPECT_EQ(fnv1a(client_side_.received), fnv1a(down));
  EXPECT_TRUE(server_side_.received == up);
  EXPECT_TRUE(client_side_.received == down);
  EXPECT_EQ(client_->transferred(), up.size() + down.size());
  EXPECT_EQ(server_->transferred(), up.size() + down.size());
  EXPECT_TRUE(client_side_.error.empty() && server_side_.error.empty());
}

// Data that arrived with the handshake's last flight sits in OpenSSL's
// read-ahead buffer, not in the socket: enabling reading must deliver it.
TEST_F(TlsStreamTest, RecordsHeldByOpenSslAreDeliveredWhenReadingResumes) {
  connect_pair(pki().file("ca.crt"));
  const std::string request = random_bytes(100 * 1024, 3);
  // The client sends as soon as its handshake is done, in the same loop turn
  // as its Finished message; the server is not reading application data.
  struct SendOnConnect : Recorder {
    const std::string* bytes = nullptr;
    void on_stream_connected(Stream& s) override {
      connected = true;
      evbuffer_add(s.output(), bytes->data(), bytes->size());
      s.flush();
    }
  } sender;
  sender.bytes = &request;
  client_->set_handler(&sender);
  client_->set_reading(true);
  ASSERT_TRUE(run_until([&] { return sender.connected && server_side_.connected; }));
  ASSERT_TRUE(run_until([&] { return evbuffer_get_length(client_->output()) == 0; }));
  // Let everything reach the server's socket and the server's loop settle.
  for (int i = 0; i < 5; ++i) event_base_loop(base_, EVLOOP_ONCE);
  EXPECT_TRUE(server_side_.received.empty());
  server_->set_reading(true);
  ASSERT_TRUE(run_until([&] { return server_side_.received.size() >= request.size(); }))
      << "server got " << server_side_.received.size() << " of " << request.size();
  EXPECT_TRUE(server_side_.received == request);
  client_->set_handler(&client_side_);
}

TEST_F(TlsStreamTest, PeerCloseWithoutCloseNotifyIsCleanEof) {
  connect_and_handshake();
  send(*client_, "last words");
  // Once the server has them, the client has also read the session tickets
  // (a close with unread bytes would be a reset, not an EOF).
  ASSERT_TRUE(run_until([&] { return server_side_.received.size() == 10; }));
  client_.reset();  // closes the socket, no close_notify
  ASSERT_TRUE(run_until([&] { return server_side_.closed || !server_side_.error.empty(); }))
      << "received [" << server_side_.received << "]";
  EXPECT_EQ(server_side_.received, "last words");
  EXPECT_TRUE(server_->peer_closed());
  EXPECT_FALSE(server_->failed());
  EXPECT_TRUE(server_side_.error.empty()) << server_side_.error;
  EXPECT_FALSE(server_->idle_and_alive());
}

TEST_F(TlsStreamTest, CloseBeforeHandshakeIsNotAHandshakeError) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_EQ(0, ::connect(fd, reinterpret_cast<sockaddr*>(&address_), sizeof address_));
  int accepted = accept_one();
  ASSERT_GE(accepted, 0);
  server_ = TlsStream::accept(base_, accepted, server_context_.get(), &server_side_);
  server_->set_reading(true);
  ::close(fd);
  ASSERT_TRUE(run_until([&] { return server_side_.closed || !server_side_.error.empty(); }));
  EXPECT_TRUE(server_side_.closed);
  EXPECT_FALSE(server_->handshake_failed());
  EXPECT_TRUE(server_side_.error.empty()) << server_side_.error;
}

// Reads what the peer sends on a blocking socket until it closes (5 s at most).
std::string read_to_eof(int fd) {
  timeval five{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &five, sizeof five);
  std::string out;
  char chunk[4096];
  for (ssize_t n; (n = ::recv(fd, chunk, sizeof chunk, 0)) > 0;) out.append(chunk, static_cast<std::size_t>(n));
  return out;
}

TEST_F(TlsStreamTest, PlainHttpIsAnsweredWithA400InPlainTextNotAHandshakeError) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_EQ(0, ::connect(fd, reinterpret_cast<sockaddr*>(&address_), sizeof address_));
  int accepted = accept_one();
  ASSERT_GE(accepted, 0);
  server_ = TlsStream::accept(base_, accepted, server_context_.get(), &server_side_);
  server_->set_reading(true);
  const std::string request = "GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(static_cast<ssize_t>(request.size()), ::send(fd, request.data(), request.size(), 0));
  ASSERT_TRUE(run_until([&] { return server_side_.refused_plain_http || !server_side_.error.empty(); }));
  EXPECT_TRUE(server_side_.error.empty()) << server_side_.error;
  EXPECT_FALSE(server_->handshake_failed());
  // The answer arrives, then our half of the connection is shut.
  std::string answer = read_to_eof(fd);
  EXPECT_EQ(answer.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << answer;
  EXPECT_NE(answer.find("Content-Type: text/plain"), std::string::npos) << answer;
  EXPECT_EQ(answer.substr(answer.find("\r\n\r\n") + 4), "Client sent an HTTP request to an HTTPS server.\n");
  // Whatever the client still sends is dropped; its close is reported.
  EXPECT_EQ(20, ::send(fd, "more bytes, dropped\n", 20, 0));
  ::close(fd);
  ASSERT_TRUE(run_until([&] { return server_side_.closed || !server_side_.error.empty(); }));
  EXPECT_TRUE(server_side_.received.empty()) << "plain bytes reached the handler: " << server_side_.received;
  EXPECT_FALSE(server_->handshake_failed());
}

TEST_F(TlsStreamTest, BytesThatAreNeitherTlsNorHttpFailTheHandshake) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_EQ(0, ::connect(fd, reinterpret_cast<sockaddr*>(&address_), sizeof address_));
  int accepted = accept_one();
  ASSERT_GE(accepted, 0);
  server_ = TlsStream::accept(base_, accepted, server_context_.get(), &server_side_);
  server_->set_reading(true);
  ASSERT_EQ(8, ::send(fd, "\x01\x02\x03\x04\x05\x06\r\n", 8, 0));
  ASSERT_TRUE(run_until([&] { return !server_side_.error.empty() || server_side_.closed; }));
  EXPECT_FALSE(server_side_.refused_plain_http);
  EXPECT_TRUE(server_->handshake_failed()) << server_side_.error;
  ::close(fd);
}

TEST(LooksLikeTlsHandshake, ClientHelloRecordHeaders) {
  using namespace std::string_view_literals;
  EXPECT_TRUE(looks_like_tls_handshake("\x16\x03\x01\x02\x00"sv));  // TLS 1.0 record version (most ClientHellos)
  EXPECT_TRUE(looks_like_tls_handshake("\x16\x03\x03"sv));
  EXPECT_TRUE(looks_like_tls_handshake("\x16\x03\x00"sv));  // SSL 3.0
  EXPECT_TRUE(looks_like_tls_handshake("\x16"sv));             // too short to tell otherwise
  EXPECT_TRUE(looks_like_tls_handshake("\x16\x03"sv));
  EXPECT_FALSE(looks_like_tls_handshake(""sv));
  EXPECT_FALSE(looks_like_tls_handshake("\x16\x02\x01"sv));
  EXPECT_FALSE(looks_like_tls_handshake("\x16\x03\x05"sv));
  EXPECT_FALSE(looks_like_tls_handshake("\x15\x03\x01"sv));  // an alert record
  EXPECT_FALSE(looks_like_tls_handshake("GET / HTTP/1.1\r\n"sv));
  EXPECT_FALSE(looks_like_tls_handshake("PRI * HTTP/2.0\r\n"sv));
}

TEST_F(TlsStreamTest, WrongCaFailsTheHandshakeWithTheVerifyReason) {
  connect_pair(pki().file("other.crt"));
  server_->set_reading(true);
  client_->set_reading(true);
  ASSERT_TRUE(run_until([&] { return !client_side_.error.empty() && !server_side_.error.empty(); }))
      << "client error: " << client_side_.error << "; server error: " << server_side_.error;
  EXPECT_EQ(client_side_.error.rfind("TLS handshake: certificate verification failed: ", 0), 0u) << client_side_.error;
  EXPECT_TRUE(client_->handshake_failed());
  EXPECT_TRUE(client_->failed());
  EXPECT_FALSE(client_side_.connected);
  EXPECT_EQ(server_side_.error.rfind("TLS handshake: ", 0), 0u) << server_side_.error;
  EXPECT_TRUE(server_->handshake_failed());
}

TEST_F(TlsStreamTest, RefusedConnectIsNotAHandshakeError) {
  ::close(listener_);  // nothing listens on the port any more
  listener_ = -1;
  client_context_ = make_client_context(pki().file("ca.crt"), false);
  std::string error;
  client_ = TlsStream::connect_to(base_, reinterpret_cast<sockaddr*>(&address_), sizeof address_,
                                  client_context_.get(), "127.0.0.1", &client_side_, error);
  if (!client_) {
    // Refused by connect() itself (loopback often answers at once): the
    // reason is the socket's, not a TLS one.
    EXPECT_EQ(error, std::strerror(ECONNREFUSED));
    return;
  }
  ASSERT_TRUE(run_until([&] { return !client_side_.error.empty(); }));
  EXPECT_TRUE(client_->failed());
  EXPECT_FALSE(client_->handshake_failed());
  EXPECT_EQ(client_side_.error.find("TLS handshake"), std::string::npos) << client_side_.error;
}

// ------------------------------------------------- the contexts a Config asks for

TEST(TlsContexts, PlainConfigurationBuildsNone) {
  const Config plain;
  TlsContexts contexts = build_tls_contexts(plain);
  EXPECT_EQ(contexts.client, nullptr);
  EXPECT_EQ(contexts.upstream, nullptr);
  EXPECT_EQ(contexts.metrics, nullptr);
}

TEST(TlsContexts, EachSideIsBuiltWhenConfigured) {
  ASSERT_TRUE(pki().ok());
  Config config;
  config.tls_cert_file = pki().file("leaf.crt");
  config.tls_key_file = pki().file("leaf.key");
  config.upstream = parse_upstream_url("https://127.0.0.1:5000");
  config.upstream_ca_file = pki().file("ca.crt");
  TlsContexts contexts = build_tls_contexts(config);
  ASSERT_NE(contexts.client, nullptr);
  EXPECT_NE(contexts.client->current(), nullptr);
  EXPECT_NE(contexts.upstream, nullptr);
  EXPECT_EQ(contexts.metrics, nullptr);  // no --metrics-tls-cert

  config.metrics_tls_cert_file = config.tls_cert_file;
  config.metrics_tls_key_file = config.tls_key_file;
  EXPECT_NE(build_tls_contexts(config).metrics, nullptr);
}

// The error text is printed after "regmeter: --", so it starts with the flag.
std::string build_error(const Config& config) {
  try {
    build_tls_contexts(config);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "(built)";
}

TEST(TlsContexts, ErrorsNameTheFlagAndTheFile) {
  ASSERT_TRUE(pki().ok());
  Config config;
  config.tls_cert_file = pki().file("leaf.crt");
  config.tls_key_file = pki().file("other.key");
  EXPECT_EQ(build_error(config).rfind(fmt::format("tls-key {}: ", pki().file("other.key")), 0), 0u);
  config.tls_key_file = pki().file("leaf.key");
  config.tls_client_ca_file = pki().file("missing-ca.crt");
  EXPECT_EQ(build_error(config).rfind(fmt::format("tls-client-ca {}: ", pki().file("missing-ca.crt")), 0), 0u);

  Config upstream;
  upstream.upstream = parse_upstream_url("https://127.0.0.1:5000");
  upstream.upstream_ca_file = pki().file("missing-ca.crt");
  EXPECT_EQ(build_error(upstream).rfind(fmt::format("upstream-ca {}: ", pki().file("missing-ca.crt")), 0), 0u);

  Config metrics;
  metrics.metrics_tls_cert_file = pki().file("leaf.crt");
  metrics.metrics_tls_key_file = pki().file("other.key");
  EXPECT_EQ(build_error(metrics).rfind("tls-key ", 0), 0u) << build_error(metrics);
}

// SIGHUP: a failed reload keeps the context in use; a good one replaces it
// (connections already open keep theirs through their own reference).
TEST(TlsContexts, ReloadSwapsOnlyWhenTheNewFilesLoad) {
  ASSERT_TRUE(pki().ok());
  fs::path key = fs::path(pki().file("reload.key"));
  fs::copy_file(pki().file("leaf.key"), key, fs::copy_options::overwrite_existing);
  ServerTlsContext context(pki().file("leaf.crt"), key.string(), "");
  SslContextPtr first = context.current();

  fs::copy_file(pki().file("other.key"), key, fs::copy_options::overwrite_existing);
  std::string error;
  EXPECT_FALSE(context.reload(error));
  EXPECT_EQ(error.rfind("tls-key ", 0), 0u) << error;
  EXPECT_EQ(context.current(), first);

  fs::copy_file(pki().file("leaf.key"), key, fs::copy_options::overwrite_existing);
  error.clear();
  EXPECT_TRUE(context.reload(error)) << error;
  EXPECT_NE(context.current(), first);
  EXPECT_NE(first, nullptr);  // still usable by whoever holds it
}

}  // namespace
}  // namespace regmeter
