// Header policy between the hops: hop-by-hop removal, X-Forwarded-*, the
// request and response heads as serialized, Location rewriting, origin form.
#include "core/headers.h"

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/http_head.h"

namespace regmeter {
namespace {

MessageHead request(std::string method, std::string target, std::vector<HeaderField> headers) {
  MessageHead head;
  head.method = std::move(method);
  head.target = std::move(target);
  head.headers = std::move(headers);
  return head;
}

MessageHead response(int status, std::string reason, std::vector<HeaderField> headers) {
  MessageHead head;
  head.status = status;
  head.reason = std::move(reason);
  head.headers = std::move(headers);
  return head;
}

// Heads as http-parser delivers them, to check the two modules together.
MessageHead parsed(MessageParser::Kind kind, const std::string& bytes) {
  MessageParser parser(kind);
  EXPECT_TRUE(parser.parse_head(bytes)) << parser.error();
  return parser.head();
}

ForwardContext forward(std::string_view client = "192.0.2.7", std::string_view scheme = "http") {
  ForwardContext context;
  context.client_address = client;
  context.proxy_scheme = scheme;
  return context;
}

ResponseContext back(std::string_view upstream = "127.0.0.1:5000", std::string_view client_host = "proxy.local:5080",
                     std::string_view scheme = "http", bool close = false) {
  ResponseContext context;
  context.upstream_authority = upstream;
  context.proxy_scheme = scheme;
  context.client_host = client_host;
  context.close_connection = close;
  return context;
}

// --------------------------------------------------------------- hop-by-hop

TEST(HopByHop, FixedNames) {
  MessageHead none;
  for (const char* name : {"Connection", "connection", "CONNECTION", "Keep-Alive", "keep-alive", "TE", "te", "Te",
                           "Trailer", "trailer", "Upgrade", "UPGRADE", "Proxy-Authorization", "proxy-authorization",
                           "Proxy-Authenticate", "Proxy-Connection", "PROXY-CONNECTION", "Proxy-Anything"})
    EXPECT_TRUE(is_hop_by_hop(name, none)) << name;
  for (const char* name : {"Host", "Authorization", "WWW-Authenticate", "Content-Length", "Transfer-Encoding",
                           "Content-Type", "Docker-Content-Digest", "Docker-Upload-UUID", "Range", "Content-Range",
                           "Location", "X-Forwarded-For", "Proxy", "Proxyx-Foo", "XProxy-Foo", "TEx", "T",
                           "Trailers", "Keep-Alive-X", "Connections", "Upgrade-Insecure-Requests", "Expect", ""})
    EXPECT_FALSE(is_hop_by_hop(name, none)) << name;
}

TEST(HopByHop, NamedByConnectionTokens) {
  MessageHead head = request("GET", "/", {{"Host", "a"},
                                          {"Connection", "keep-alive, X-Foo ,\tx-bar\t,, ,X-Baz"},
                                          {"connection", "X-Second-Field"},
                                          {"X-Foo", "1"}});
  for (const char* name : {"X-Foo", "x-foo", "X-FOO", "X-Bar", "X-Baz", "x-baz", "X-Second-Field", "keep-alive"})
    EXPECT_TRUE(is_hop_by_hop(name, head)) << name;
  for (const char* name : {"X-Fo", "X-Foo ", " X-Foo", "X-Foo,", "X-Qux", "Host", "Authorization"})
    EXPECT_FALSE(is_hop_by_hop(name, head)) << "[" << name << "]";
}

TEST(HopByHop, ConnectionTokensOnlyFromConnectionFields) {
  MessageHead head = request("GET", "/", {{"Host", "a"}, {"X-Connection", "X-Foo"}, {"Keep-Alive", "X-Bar"}});
  EXPECT_FALSE(is_hop_by_hop("X-Foo", head));
  EXPECT_FALSE(is_hop_by_hop("X-Bar", head));
}

// --------------------------------------------------------- request head

TEST(UpstreamRequestHead, DockerPushPatchExact) {
  const std::string target = "/v2/library/app/blobs/uploads/6d9b2f4e?_state=Pk2b6m0V%2Bhg%3D%3D&n=1";
  MessageHead head = request("PATCH", target,
                             {
                                 {"Host", "Registry.Example:5080"},
                                 {"User-Agent", "docker/24.0.7 go/go1.20.10"},
                                 {"Authorization", "Bearer eyJhbGciOi.x_y-z=="},
                                 {"Content-Length", "5"},
                                 {"Content-Type", "application/octet-stream"},
                                 {"Content-Range", "0-4"},
                                 {"Connection", "keep-alive"},
                                 {"Keep-Alive", "timeout=5"},
                                 {"X-Forwarded-For", "10.0.0.1"},
                                 {"X-Forwarded-Proto", "https"},
                                 {"X-Forwarded-Host", "evil.example"},
                                 {"Docker-Content-Digest", "sha256:e3b0c442"},
                                 {"Range", "bytes=0-4"},
                                 {"Accept-Encoding", "gzip"},
                             });
  EXPECT_EQ(upstream_request_head(head, target, forward()),
            "PATCH " + target + " HTTP/1.1\r\n"
            "Host: Registry.Example:5080\r\n"
            "User-Agent: docker/24.0.7 go/go1.20.10\r\n"
            "Authorization: Bearer eyJhbGciOi.x_y-z==\r\n"
            "Content-Length: 5\r\n"
            "Content-Type: application/octet-stream\r\n"
            "Content-Range: 0-4\r\n"
            "Docker-Content-Digest: sha256:e3b0c442\r\n"
            "Range: bytes=0-4\r\n"
            "Accept-Encoding: gzip\r\n"
            "X-Forwarded-For: 10.0.0.1, 192.0.2.7\r\n"
            "X-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: Registry.Example:5080\r\n"
            "\r\n");
}

TEST(UpstreamRequestHead, MinimalGet) {
  MessageHead head = request("GET", "/v2/", {{"Host", "127.0.0.1:5080"}});
  EXPECT_EQ(upstream_request_head(head, "/v2/", forward("::1", "https")),
            "GET /v2/ HTTP/1.1\r\n"
            "Host: 127.0.0.1:5080\r\n"
            "X-Forwarded-For: ::1\r\n"
            "X-Forwarded-Proto: https\r\n"
            "X-Forwarded-Host: 127.0.0.1:5080\r\n"
            "\r\n");
}

TEST(UpstreamRequestHead, RequestIdAddedOnlyWhenTheClientSentNone) {
  ForwardContext context = forward();
  context.request_id_if_missing = "0123456789abcdef0001000000000007";
  MessageHead head = request("GET", "/v2/", {{"Host", "h:1"}});
  EXPECT_EQ(upstream_request_head(head, "/v2/", context),
            "GET /v2/ HTTP/1.1\r\n"
            "Host: h:1\r\n"
            "X-Forwarded-For: 192.0.2.7\r\n"
            "X-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: h:1\r\n"
            "X-Request-Id: 0123456789abcdef0001000000000007\r\n"
            "\r\n");
  // The client's own id goes through unchanged, whatever its case, and ours is not added.
  MessageHead own = request("GET", "/v2/", {{"Host", "h:1"}, {"x-request-id", "abc-123"}});
  EXPECT_EQ(upstream_request_head(own, "/v2/", context),
            "GET /v2/ HTTP/1.1\r\n"
            "Host: h:1\r\n"
            "x-request-id: abc-123\r\n"
            "X-Forwarded-For: 192.0.2.7\r\n"
            "X-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: h:1\r\n"
            "\r\n");
}

TEST(UpstreamRequestHead, UsesTheGivenOriginTargetAndHttp11) {
  // An HTTP/1.0 client with an absolute-form target and no Host.
  MessageHead head = parsed(MessageParser::Kind::request, "GET http://evil:1/v2/x?y HTTP/1.0\r\nAccept: */*\r\n\r\n");
  ASSERT_EQ(head.http_minor, 0u);
  // HTTP/1.1 requires a Host: the proxy supplies the one it answers to.
  ForwardContext context = forward();
  context.host_if_missing = "proxy.local:5080";
  std::string out = upstream_request_head(head, origin_form(head.target), context);
  EXPECT_EQ(out,
            "GET /v2/x?y HTTP/1.1\r\n"
            "Accept: */*\r\n"
            "Host: proxy.local:5080\r\n"
            "X-Forwarded-For: 192.0.2.7\r\n"
            "X-Forwarded-Proto: http\r\n"
            "\r\n");
  MessageParser strict(MessageParser::Kind::request);
  EXPECT_TRUE(strict.parse_head(out)) << strict.error();
}

TEST(UpstreamRequestHead, ForwardedForChainsAreJoinedInOrder) {
  MessageHead head = request("GET", "/", {{"x-forwarded-for", "203.0.113.1, 10.0.0.1"},
                                          {"Host", "h"},
                                          {"X-FORWARDED-FOR", "10.0.0.2"}});
  EXPECT_EQ(upstream_request_head(head, "/", forward("192.0.2.7")),
            "GET / HTTP/1.1\r\n"
            "Host: h\r\n"
            "X-Forwarded-For: 203.0.113.1, 10.0.0.1, 10.0.0.2, 192.0.2.7\r\n"
            "X-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: h\r\n"
            "\r\n");
}

TEST(UpstreamRequestHead, ClientForwardedProtoAndHostDroppedWhateverTheirCase) {
  MessageHead head = request("GET", "/", {{"x-forwarded-proto", "https"},
                                          {"X-Forwarded-Host", "evil"},
                                          {"x-FORWARDED-host", "evil2"},
                                          {"Host", "good:5080"}});
  std::string out = upstream_request_head(head, "/", forward());
  EXPECT_EQ(out,
            "GET / HTTP/1.1\r\n"
            "Host: good:5080\r\n"
            "X-Forwarded-For: 192.0.2.7\r\n"
            "X-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: good:5080\r\n"
            "\r\n");
}

TEST(UpstreamRequestHead, HopByHopRemovedEndToEndKeptByteForByte) {
  MessageHead head = request("PUT", "/v2/x/manifests/latest",
                             {
                                 {"Host", "h"},
                                 {"Connection", "Upgrade, X-Hop"},
                                 {"Upgrade", "h2c"},
                                 {"TE", "trailers"},
                                 {"Trailer", "X-Checksum"},
                                 {"Proxy-Authorization", "Basic Zm9vOmJhcg=="},
                                 {"Proxy-Connection", "keep-alive"},
                                 {"X-Hop", "gone"},
                                 {"content-type", "application/vnd.oci.image.manifest.v1+json"},
                                 {"Transfer-Encoding", "chunked"},
                                 {"X-Spacing", "a  b\t c"},
                                 {"X-Empty", ""},
                                 {"Authorization", "Basic dXNlcjpwYXNz"},
                             });
  EXPECT_EQ(upstream_request_head(head, "/v2/x/manifests/latest", forward()),
            "PUT /v2/x/manifests/latest HTTP/1.1\r\n"
            "Host: h\r\n"
            "content-type: application/vnd.oci.image.manifest.v1+json\r\n"
            "Transfer-Encoding: chunked\r\n"
            "X-Spacing: a  b\t c\r\n"
            "X-Empty: \r\n"
            "Authorization: Basic dXNlcjpwYXNz\r\n"
            "X-Forwarded-For: 192.0.2.7\r\n"
            "X-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: h\r\n"
            "\r\n");
}

TEST(UpstreamRequestHead, ConnectionCloseFromClientDoesNotReachUpstream) {
  MessageHead head = parsed(MessageParser::Kind::request,
                            "GET /v2/ HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
  std::string out = upstream_request_head(head, "/v2/", forward());
  EXPECT_EQ(out.find("Connection"), std::string::npos) << out;
  EXPECT_EQ(out.find("close"), std::string::npos) << out;
}

TEST(UpstreamRequestHead, FirstHostIsForwardedHost) {
  MessageHead head = request("GET", "/", {{"host", "first:1"}, {"Host", "second:2"}});
  std::string out = upstream_request_head(head, "/", forward());
  EXPECT_NE(out.find("\r\nX-Forwarded-Host: first:1\r\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\r\nhost: first:1\r\n"), std::string::npos) << out;
}

// The proxy forwards body bytes exactly as framed by the client. If a
// client-named Connection token could remove the framing field, the upstream
// would frame the body differently (classic hop-by-hop smuggling:
// "Connection: Content-Length" / "Connection: Transfer-Encoding"). The
// framing fields must survive whatever Connection says.
TEST(UpstreamRequestHead, ConnectionCannotStripFraming) {
  struct Case {
    std::string bytes;
    std::vector<std::string> must_keep;
  };
  const Case cases[] = {
      {"POST /v2/x/blobs/uploads/ HTTP/1.1\r\nHost: h\r\nConnection: Content-Length\r\nContent-Length: 5\r\n\r\n",
       {"\r\nContent-Length: 5\r\n"}},
      {"PATCH /v2/x/blobs/uploads/u HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, transfer-encoding\r\n"
       "Transfer-Encoding: chunked\r\n\r\n",
       {"\r\nTransfer-Encoding: chunked\r\n"}},
      {"POST /v2/x/blobs/uploads/ HTTP/1.1\r\nHost: h\r\nConnection: close\r\nConnection: CONTENT-LENGTH\r\n"
       "Content-Length: 5\r\n\r\n",
       {"\r\nContent-Length: 5\r\n"}},
  };
  for (const auto& c : cases) {
    MessageHead head = parsed(MessageParser::Kind::request, c.bytes);
    std::string out = upstream_request_head(head, head.target, forward());
    for (const auto& keep : c.must_keep) EXPECT_NE(out.find(keep), std::string::npos) << "lost " << keep << " in:\n" << out;
  }
}

// -------------------------------------------------------- response head

TEST(ClientResponseHead, BlobUploadCreatedExact) {
  MessageHead head = response(201, "Created",
                              {
                                  {"Docker-Distribution-Api-Version", "registry/2.0"},
                                  {"Location", "http://127.0.0.1:5000/v2/library/app/blobs/sha256:e3b0c442"},
                                  {"Docker-Content-Digest", "sha256:e3b0c442"},
                                  {"Content-Length", "0"},
                                  {"Connection", "keep-alive"},
                                  {"Keep-Alive", "timeout=90"},
                                  {"Date", "Mon, 01 Jan 2024 00:00:00 GMT"},
                              });
  EXPECT_EQ(client_response_head(head, back()),
            "HTTP/1.1 201 Created\r\n"
            "Docker-Distribution-Api-Version: registry/2.0\r\n"
            "Location: http://proxy.local:5080/v2/library/app/blobs/sha256:e3b0c442\r\n"
            "Docker-Content-Digest: sha256:e3b0c442\r\n"
            "Content-Length: 0\r\n"
            "Date: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
            "\r\n");
}

TEST(ClientResponseHead, UploadAcceptedRelativeLocationAndStateUntouched) {
  const std::string location =
      "/v2/library/app/blobs/uploads/6d9b2f4e-8c1a?_state=Pk2b6m0VhGZPqW3y%2B%2F%3D%3D&_x=a+b";
  MessageHead head = response(202, "Accepted",
                              {
                                  {"Location", location},
                                  {"Range", "0-1048575"},
                                  {"Docker-Upload-UUID", "6d9b2f4e-8c1a"},
                                  {"Content-Length", "0"},
                              });
  EXPECT_EQ(client_response_head(head, back()),
            "HTTP/1.1 202 Accepted\r\n"
            "Location: " + location + "\r\n"
            "Range: 0-1048575\r\n"
            "Docker-Upload-UUID: 6d9b2f4e-8c1a\r\n"
            "Content-Length: 0\r\n"
            "\r\n");
}

TEST(ClientResponseHead, AbsoluteUpstreamLocationWithStateRewrittenQueryByteForByte) {
  const std::string tail = "/v2/a/b/blobs/uploads/u-1?_state=AbC%2Bd%2F%3D%3D%3D&digest=sha256%3Aab&x=%7E~";
  MessageHead head = response(202, "Accepted", {{"location", "http://127.0.0.1:5000" + tail}});
  EXPECT_EQ(client_response_head(head, back()),
            "HTTP/1.1 202 Accepted\r\n"
            "location: http://proxy.local:5080" + tail + "\r\n"
            "\r\n");
}

TEST(ClientResponseHead, OtherHostsAndAuthHeadersUntouched) {
  const std::string s3 =
      "https://bucket.s3.amazonaws.com/docker/registry/v2/blobs/sha256/e3/e3b0/data?X-Amz-Signature=ab%2Fcd";
  MessageHead redirect = response(307, "Temporary Redirect", {{"Location", s3}, {"Content-Length", "0"}});
  EXPECT_EQ(client_response_head(redirect, back()),
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: " + s3 + "\r\nContent-Length: 0\r\n\r\n");

  const std::string challenge = "Bearer realm=\"http://127.0.0.1:5000/token\",service=\"registry\",scope=\"repository:a/b:pull,push\"";
  MessageHead unauthorized = response(401, "Unauthorized",
                                      {{"Content-Type", "application/json; charset=utf-8"},
                                       {"WWW-Authenticate", challenge},
                                       {"Docker-Distribution-Api-Version", "registry/2.0"},
                                       {"Content-Length", "145"}});
  EXPECT_EQ(client_response_head(unauthorized, back()),
            "HTTP/1.1 401 Unauthorized\r\n"
            "Content-Type: application/json; charset=utf-8\r\n"
            "WWW-Authenticate: " + challenge + "\r\n"
            "Docker-Distribution-Api-Version: registry/2.0\r\n"
            "Content-Length: 145\r\n"
            "\r\n");
}

TEST(ClientResponseHead, ConnectionCloseWhenAsked) {
  MessageHead head = response(200, "OK", {{"Connection", "keep-alive"}, {"Content-Length", "2"}});
  EXPECT_EQ(client_response_head(head, back("127.0.0.1:5000", "p:1", "http", /*close=*/true)),
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(client_response_head(head, back("127.0.0.1:5000", "p:1", "http", /*close=*/false)),
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n");
  // The upstream's own "close" is the upstream connection's business.
  MessageHead closing = response(200, "OK", {{"Connection", "close"}, {"Content-Length", "2"}});
  EXPECT_EQ(client_response_head(closing, back()), "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n");
}

TEST(ClientResponseHead, StatusLineAlwaysHttp11WithReason) {
  MessageHead head = parsed(MessageParser::Kind::response, "HTTP/1.0 404 Not Found\r\nContent-Length: 19\r\n\r\n");
  EXPECT_EQ(client_response_head(head, back()), "HTTP/1.1 404 Not Found\r\nContent-Length: 19\r\n\r\n");
  MessageHead weird = response(599, "Some Custom  Reason", {});
  EXPECT_EQ(client_response_head(weird, back()), "HTTP/1.1 599 Some Custom  Reason\r\n\r\n");
}

TEST(ClientResponseHead, HopByHopResponseFieldsRemoved) {
  MessageHead head = parsed(MessageParser::Kind::response,
                            "HTTP/1.1 200 OK\r\n"
                            "Connection: X-Upstream-Only\r\n"
                            "X-Upstream-Only: 1\r\n"
                            "Keep-Alive: timeout=5\r\n"
                            "Proxy-Authenticate: Basic\r\n"
                            "Trailer: X-Checksum\r\n"
                            "Upgrade: h2c\r\n"
                            "Transfer-Encoding: chunked\r\n"
                            "Docker-Content-Digest: sha256:ab\r\n"
                            "\r\n");
  EXPECT_EQ(client_response_head(head, back()),
            "HTTP/1.1 200 OK\r\n"
            "Transfer-Encoding: chunked\r\n"
            "Docker-Content-Digest: sha256:ab\r\n"
            "\r\n");
}

// Same framing concern as on the request side: the body is relayed as the
// upstream framed it.
TEST(ClientResponseHead, ConnectionCannotStripFraming) {
  MessageHead head = parsed(MessageParser::Kind::response,
                            "HTTP/1.1 200 OK\r\nConnection: Content-Length\r\nContent-Length: 2\r\n\r\n");
  EXPECT_EQ(client_response_head(head, back()), "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n");
  head = parsed(MessageParser::Kind::response,
                "HTTP/1.1 200 OK\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n");
  EXPECT_EQ(client_response_head(head, back()), "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
}

// ------------------------------------------------------- rewrite_location

struct LocationCase {
  std::string location;
  std::string expected;
  std::string upstream = "127.0.0.1:5000";
  std::string client_host = "proxy.local:5080";
  std::string scheme = "http";
};
void PrintTo(const LocationCase& c, std::ostream* os) {
  *os << "\"" << c.location << "\" (upstream " << c.upstream << ", client host " << c.client_host << ", "
      << c.scheme << ")";
}

class RewriteLocation : public ::testing::TestWithParam<LocationCase> {};

TEST_P(RewriteLocation, Table) {
  const LocationCase& c = GetParam();
  EXPECT_EQ(rewrite_location(c.location, back(c.upstream, c.client_host, c.scheme)), c.expected);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, RewriteLocation,
    ::testing::Values(
        // Points at the upstream: rewritten, the rest byte for byte.
        LocationCase{"http://127.0.0.1:5000/v2/x/blobs/uploads/u?_state=a%2Bb%3D%3D&n=1",
                     "http://proxy.local:5080/v2/x/blobs/uploads/u?_state=a%2Bb%3D%3D&n=1"},
        LocationCase{"http://127.0.0.1:5000", "http://proxy.local:5080"},
        LocationCase{"http://127.0.0.1:5000/", "http://proxy.local:5080/"},
        LocationCase{"http://127.0.0.1:5000?_state=x", "http://proxy.local:5080?_state=x"},
        LocationCase{"http://127.0.0.1:5000#frag", "http://proxy.local:5080#frag"},
        LocationCase{"HTTP://127.0.0.1:5000/v2/", "http://proxy.local:5080/v2/"},
        LocationCase{"https://127.0.0.1:5000/v2/", "http://proxy.local:5080/v2/"},
        LocationCase{"http://127.0.0.1:5000/v2/", "https://reg.example/v2/", "127.0.0.1:5000", "reg.example",
                     "https"},
        LocationCase{"http://Registry:5000/v2/", "http://[::1]:5080/v2/", "registry:5000", "[::1]:5080"},
        LocationCase{"http://[::1]:5000/v2/", "http://p:1/v2/", "[::1]:5000", "p:1"},
        // Anything else: unchanged.
        LocationCase{"/v2/x/blobs/uploads/u?_state=a", "/v2/x/blobs/uploads/u?_state=a"},
        LocationCase{"v2/relative", "v2/relative"},
        LocationCase{"", ""},
        LocationCase{"http://127.0.0.1:50000/v2/", "http://127.0.0.1:50000/v2/"},
        LocationCase{"http://127.0.0.1:500/v2/", "http://127.0.0.1:500/v2/"},
        LocationCase{"http://127.0.0.1/v2/", "http://127.0.0.1/v2/"},
        LocationCase{"http://127.0.0.1:5000.evil.example/v2/", "http://127.0.0.1:5000.evil.example/v2/"},
        LocationCase{"http://user@127.0.0.1:5000/v2/", "http://user@127.0.0.1:5000/v2/"},
        LocationCase{"http://evil.example/?next=http://127.0.0.1:5000/", "http://evil.example/?next=http://127.0.0.1:5000/"},
        LocationCase{"https://s3.example/bucket?sig=a%2F", "https://s3.example/bucket?sig=a%2F"},
        LocationCase{"ftp://127.0.0.1:5000/x", "ftp://127.0.0.1:5000/x"},
        LocationCase{"/redirect?to=http://127.0.0.1:5000/", "/redirect?to=http://127.0.0.1:5000/"},
        // Without a client Host there is nothing to point at: unchanged.
        LocationCase{"http://127.0.0.1:5000/v2/", "http://127.0.0.1:5000/v2/", "127.0.0.1:5000", ""}));

// ------------------------------------------------------------ origin_form

TEST(OriginForm, Table) {
  struct Case {
    std::string target;
    std::string expected;
  };
  const Case cases[] = {
      {"/v2/", "/v2/"},
      {"/", "/"},
      {"/v2/x/blobs/uploads/u?_state=a%2B%3D&digest=sha256:ab", "/v2/x/blobs/uploads/u?_state=a%2B%3D&digest=sha256:ab"},
      {"//double/slash", "//double/slash"},
      {"http://evil:1/v2/x?y", "/v2/x?y"},
      {"http://evil:1/v2/x?y=http://a/b", "/v2/x?y=http://a/b"},
      {"https://registry.example/v2/", "/v2/"},
      {"HTTP://registry.example/v2/", "/v2/"},
      {"http://user:pw@registry.example:5000/v2/a", "/v2/a"},
      {"http://[::1]:5000/v2/", "/v2/"},
      {"http://evil:1", "/"},
      {"http://evil:1?y=1", "/?y=1"},
      {"*", ""},
      {"", ""},
      {"host:443", ""},
      {"registry.example:5000", ""},
      {"v2/relative", ""},
      {"ftp://evil/v2/", ""},
      {"evil://x/v2/", ""},
  };
  for (const auto& c : cases) EXPECT_EQ(origin_form(c.target), c.expected) << "[" << c.target << "]";
}

}  // namespace
}  // namespace regmeter

namespace regmeter {
namespace {

TEST(UpstreamRequestHeadTrusted, KeepsTheBalancersForwardedHeaders) {
  // --trust-forwarded-headers: a TLS-terminating balancer in front says the
  // client used https on registry.example; the registry must hear that.
  MessageHead head;
  head.method = "GET";
  head.target = "/v2/";
  head.headers = {{"Host", "registry.example"}, {"X-Forwarded-Proto", "https"}, {"X-Forwarded-Host", "registry.example"}};
  ForwardContext context;
  context.client_address = "10.1.2.3";
  context.proxy_scheme = "http";
  context.trust_forwarded = true;
  EXPECT_EQ(upstream_request_head(head, "/v2/", context),
            "GET /v2/ HTTP/1.1\r\n"
            "Host: registry.example\r\n"
            "X-Forwarded-Proto: https\r\n"
            "X-Forwarded-Host: registry.example\r\n"
            "X-Forwarded-For: 10.1.2.3\r\n"
            "\r\n");
  // Without the flag the same request gets ours.
  context.trust_forwarded = false;
  EXPECT_EQ(upstream_request_head(head, "/v2/", context),
            "GET /v2/ HTTP/1.1\r\n"
            "Host: registry.example\r\n"
            "X-Forwarded-For: 10.1.2.3\r\n"
            "X-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: registry.example\r\n"
            "\r\n");
}

}  // namespace
}  // namespace regmeter

namespace regmeter {
namespace {

TEST(UpstreamRequestHeadForwarded, DropsAClientsForwardedUnlessTrusted) {
  MessageHead head;
  head.method = "POST";
  head.target = "/v2/x/blobs/uploads/";
  head.headers = {{"Host", "proxy:5080"}, {"Forwarded", "host=evil.invalid;proto=https"}};
  ForwardContext context;
  context.client_address = "10.0.0.9";
  context.proxy_scheme = "http";
  std::string out = upstream_request_head(head, head.target, context);
  EXPECT_EQ(out.find("Forwarded: host=evil"), std::string::npos) << out;
  context.trust_forwarded = true;
  out = upstream_request_head(head, head.target, context);
  EXPECT_NE(out.find("Forwarded: host=evil.invalid;proto=https\r\n"), std::string::npos) << out;
}

}  // namespace
}  // namespace regmeter

namespace regmeter {
namespace {

TEST(HopByHopFields, OneSetForTheWholeHead) {
  MessageHead head = request("GET", "/", {{"Host", "a"},
                                          {"Connection", "keep-alive, X-Foo ,\tx-bar\t,, ,X-Baz"},
                                          {"connection", "X-Second-Field, Host, content-length, TRANSFER-ENCODING"},
                                          {"X-Foo", "1"}});
  const HopByHopFields hop(head);
  for (const char* name : {"X-Foo", "x-foo", "X-FOO", "X-Bar", "X-Baz", "x-second-field", "Keep-Alive", "Connection",
                           "TE", "Trailer", "Upgrade", "Proxy-Authorization"})
    EXPECT_TRUE(hop.contains(name)) << name;
  for (const char* name : {"X-Fo", "X-Foo ", "X-Qux", "Host", "Content-Length", "Transfer-Encoding", "", "X-Baz2"})
    EXPECT_FALSE(hop.contains(name)) << "[" << name << "]";
  EXPECT_FALSE(HopByHopFields(request("GET", "/", {{"Host", "a"}})).contains("X-Foo"));
}

// Many options and many fields: every field named by an option is dropped,
// every other kept (the order of options does not matter: they are sorted).
TEST(HopByHopFields, ManyOptionsManyFields) {
  std::vector<HeaderField> fields{{"Host", "a"}};
  std::string options;
  for (int i = 0; i < 500; ++i) {
    if (i % 2 == 0) options += (options.empty() ? "" : ", ") + std::string("X-N") + std::to_string(499 - i);
    fields.push_back({"X-N" + std::to_string(i), "v"});
  }
  fields.push_back({"Connection", options});
  MessageHead head = request("GET", "/v2/", fields);
  std::string out = upstream_request_head(head, "/v2/", forward());
  for (int i = 0; i < 500; ++i) {
    bool named = (499 - i) % 2 == 0;  // i odd
    EXPECT_EQ(out.find("\r\nX-N" + std::to_string(i) + ": v\r\n") == std::string::npos, named) << i;
  }
}

}  // namespace
}  // namespace regmeter
