// MessageParser framing over http-parser 2.9.4: one head, then body slices,
// stopping exactly at the end of the message; smuggling-shaped inputs refused.
//
// Where http-parser lets something through that the proxy must answer with
// 400, the test asserts the refusal (parse_head false) and its failure
// message says what the parser produced instead.
#include "core/ascii.h"
#include "core/http_head.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace regmeter {
namespace {

using Kind = MessageParser::Kind;
using namespace std::string_literals;

std::string head_of(std::string_view message) {
  std::size_t end = find_head_end(message);
  return std::string(message.substr(0, end));
}

// Printable form of bytes for failure messages.
std::string shown(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) {
    if (c == '\r') out += "\\r";
    else if (c == '\n') out += "\\n";
    else if (c == '\0') out += "\\0";
    else if (c < 32 || c >= 127) {
      static const char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else out += static_cast<char>(c);
  }
  return out;
}

std::string describe(const MessageHead& head) {
  std::string out = head.method.empty() ? std::to_string(head.status) : head.method + " " + head.target;
  for (const auto& f : head.headers) out += " | [" + shown(f.name) + "]=[" + shown(f.value) + "]";
  return out;
}

// Feeds `body` in slices of `step` bytes (0: one piece) and sums progress,
// stopping at the first slice that is not fully consumed.
struct Fed {
  std::size_t consumed = 0;
  std::uint64_t body_bytes = 0;
  bool ok = true;
};
Fed feed(MessageParser& parser, std::string_view data, std::size_t step) {
  Fed fed;
  if (step == 0) step = data.size();
  std::size_t at = 0;
  while (at < data.size()) {
    std::string_view slice = data.substr(at, step);
    auto progress = parser.parse_body(slice);
    fed.consumed += progress.consumed;
    fed.body_bytes += progress.body_bytes;
    if (!progress.ok) {
      fed.ok = false;
      break;
    }
    at += slice.size();
    if (progress.consumed != slice.size()) break;
  }
  return fed;
}

// ------------------------------------------------------------ find_head_end

TEST(FindHeadEnd, Table) {
  struct Case {
    std::string data;
    std::size_t expected;
  };
  const Case cases[] = {
      {"", 0},
      {"GET / HTTP/1.1\r\n", 0},
      {"GET / HTTP/1.1\r\nHost: a\r\n", 0},
      {"GET / HTTP/1.1\r\nHost: a\r\n\r", 0},
      {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27},
      {"GET / HTTP/1.1\r\nHost: a\r\n\r\nbody bytes\r\n\r\n", 27},
      {"GET / HTTP/1.1\n\n", 0},  // bare LF heads are never found
      {"\r\n\r\n", 4},
  };
  for (const auto& c : cases) EXPECT_EQ(find_head_end(c.data), c.expected) << shown(c.data);
}

// ------------------------------------------------------ requests, no body

TEST(MessageParserRequest, GetWithoutBodyIsCompleteAfterHead) {
  const std::string head =
      "GET /v2/library/alpine/manifests/3.19?x=1 HTTP/1.1\r\n"
      "Host: registry.local:5080\r\n"
      "user-agent: docker/24.0.7\r\n"
      "Accept: application/vnd.oci.image.index.v1+json\r\n"
      "Accept: application/vnd.docker.distribution.manifest.v2+json\r\n"
      "Authorization: Bearer abc.def==\r\n"
      "\r\n";
  ASSERT_EQ(find_head_end(head), head.size());
  MessageParser parser(Kind::request);
  ASSERT_TRUE(parser.parse_head(head)) << parser.error();
  EXPECT_TRUE(parser.complete());
  EXPECT_FALSE(parser.body_until_eof());
  const MessageHead& h = parser.head();
  EXPECT_EQ(h.method, "GET");
  EXPECT_EQ(h.target, "/v2/library/alpine/manifests/3.19?x=1");
  EXPECT_EQ(h.http_major, 1u);
  EXPECT_EQ(h.http_minor, 1u);
  EXPECT_TRUE(h.keep_alive);
  EXPECT_FALSE(h.chunked);
  EXPECT_FALSE(h.content_length.has_value());
  ASSERT_EQ(h.headers.size(), 5u) << describe(h);
  EXPECT_EQ(h.headers[0].name, "Host");
  EXPECT_EQ(h.headers[0].value, "registry.local:5080");
  EXPECT_EQ(h.headers[1].name, "user-agent");  // names as received
  EXPECT_EQ(h.headers[1].value, "docker/24.0.7");
  EXPECT_EQ(h.headers[2].value, "application/vnd.oci.image.index.v1+json");
  EXPECT_EQ(h.headers[3].value, "application/vnd.docker.distribution.manifest.v2+json");
  EXPECT_EQ(h.headers[4].name, "Authorization");
  EXPECT_EQ(h.headers[4].value, "Bearer abc.def==");

  // Nothing more belongs to it: the next request's bytes are left alone.
  auto progress = parser.parse_body("GET / HTTP/1.1\r\n\r\n");
  EXPECT_EQ(progress.consumed, 0u);
  EXPECT_EQ(progress.body_bytes, 0u);
  EXPECT_TRUE(progress.ok);
  EXPECT_TRUE(parser.finish_at_eof());
}

TEST(MessageParserRequest, MethodsAndTargets) {
  struct Case {
    std::string head;
    std::string method;
    std::string target;
  };
  const Case cases[] = {
      {"HEAD /v2/x/blobs/sha256:ab HTTP/1.1\r\nHost: a\r\n\r\n", "HEAD", "/v2/x/blobs/sha256:ab"},
      {"DELETE /v2/x/manifests/sha256:ab HTTP/1.1\r\nHost: a\r\n\r\n", "DELETE", "/v2/x/manifests/sha256:ab"},
      {"GET http://evil:1/v2/x?y HTTP/1.1\r\nHost: a\r\n\r\n", "GET", "http://evil:1/v2/x?y"},
      {"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", "OPTIONS", "*"},
      {"GET /v2/?_state=a%2Bb%3D%3D&n=1 HTTP/1.1\r\nHost: a\r\n\r\n", "GET", "/v2/?_state=a%2Bb%3D%3D&n=1"},
  };
  for (const auto& c : cases) {
    MessageParser parser(Kind::request);
    ASSERT_TRUE(parser.parse_head(c.head)) << shown(c.head) << ": " << parser.error();
    EXPECT_EQ(parser.head().method, c.method);
    EXPECT_EQ(parser.head().target, c.target);
    EXPECT_TRUE(parser.complete()) << shown(c.head);
  }
}

TEST(MessageParserRequest, ContentLengthZeroIsCompleteAfterHead) {
  MessageParser parser(Kind::request);
  ASSERT_TRUE(parser.parse_head("PUT /v2/x/blobs/uploads/u?digest=sha256:ab HTTP/1.1\r\nHost: a\r\n"
                                "Content-Length: 0\r\n\r\n"))
      << parser.error();
  EXPECT_TRUE(parser.complete());
  EXPECT_EQ(parser.head().content_length, std::optional<std::uint64_t>(0));
}

// ------------------------------------------------- Content-Length bodies

const std::string kPatchHead =
    "PATCH /v2/lib/blobs/uploads/6d9b?_state=abc HTTP/1.1\r\n"
    "Host: a\r\n"
    "Content-Type: application/octet-stream\r\n"
    "Content-Length: 10\r\n"
    "\r\n";
const std::string kNextRequest = "GET /v2/ HTTP/1.1\r\nHost: a\r\n\r\n";

TEST(MessageParserContentLength, BodyInOnePieceStopsAtTheEnd) {
  MessageParser parser(Kind::request);
  ASSERT_TRUE(parser.parse_head(kPatchHead)) << parser.error();
  EXPECT_FALSE(parser.complete());
  EXPECT_EQ(parser.head().content_length, std::optional<std::uint64_t>(10));
  EXPECT_FALSE(parser.head().chunked);
  EXPECT_FALSE(parser.body_until_eof());

  std::string data = "0123456789" + kNextRequest;
  auto progress = parser.parse_body(data);
  EXPECT_TRUE(progress.ok) << parser.error();
  EXPECT_EQ(progress.consumed, 10u);
  EXPECT_EQ(progress.body_bytes, 10u);
  EXPECT_TRUE(parser.complete());
  // Further bytes are not taken.
  progress = parser.parse_body(std::string_view(data).substr(10));
  EXPECT_EQ(progress.consumed, 0u);
  EXPECT_TRUE(progress.ok);
}

TEST(MessageParserContentLength, BodyOneByteAtATime) {
  MessageParser parser(Kind::request);
  ASSERT_TRUE(parser.parse_head(kPatchHead)) << parser.error();
  std::string data = "0123456789" + kNextRequest;
  for (std::size_t i = 0; i < 10; ++i) {
    EXPECT_FALSE(parser.complete()) << i;
    auto progress = parser.parse_body(std::string_view(data).substr(i, 1));
    EXPECT_TRUE(progress.ok) << i << ": " << parser.error();
    EXPECT_EQ(progress.consumed, 1u) << i;
    EXPECT_EQ(progress.body_bytes, 1u) << i;
  }
  EXPECT_TRUE(parser.complete());
  auto progress = parser.parse_body(std::string_view(data).substr(10, 1));
  EXPECT_EQ(progress.consumed, 0u);
  EXPECT_EQ(progress.body_bytes, 0u);
}

TEST(MessageParserContentLength, EmptySliceConsumesNothing) {
  MessageParser parser(Kind::request);
  ASSERT_TRUE(parser.parse_head(kPatchHead)) << parser.error();
  auto progress = parser.parse_body("");
  EXPECT_EQ(progress.consumed, 0u);
  EXPECT_EQ(progress.body_bytes, 0u);
  EXPECT_TRUE(progress.ok);
  EXPECT_FALSE(parser.complete());
}

TEST(MessageParserContentLength, LargeLength) {
  MessageParser parser(Kind::request);
  ASSERT_TRUE(parser.parse_head("PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10737418240\r\n\r\n"))
      << parser.error();
  EXPECT_EQ(parser.head().content_length, std::optional<std::uint64_t>(10737418240ull));
  std::string chunk(256 * 1024, 'x');
  auto progress = parser.parse_body(chunk);
  EXPECT_EQ(progress.consumed, chunk.size());
  EXPECT_EQ(progress.body_bytes, chunk.size());
  EXPECT_FALSE(parser.complete());
}

// --------------------------------------------------------- chunked bodies

const std::string kChunkedHead =
    "PATCH /v2/lib/blobs/uploads/6d9b HTTP/1.1\r\n"
    "Host: a\r\n"
    "Transfer-Encoding: chunked\r\n"
    "\r\n";
// 5 + 6 + 16 = 27 payload bytes, with extensions, upper-case hex and trailers.
const std::string kChunkedBody =
    "5;name=value\r\n"
    "hello\r\n"
    "6 ; ext\r\n"
    " world\r\n"
    "A;a=\"quoted\";b\r\n"
    "0123456789\r\n"
    "6\r\n"
    "abcdef\r\n"
    "0;last=1\r\n"
    "X-Checksum: abc\r\n"
    "Other-Trailer: 1\r\n"
    "\r\n";
constexpr std::uint64_t kChunkedPayload = 5 + 6 + 10 + 6;

class MessageParserChunked : public ::testing::TestWithParam<std::size_t> {};

TEST_P(MessageParserChunked, PayloadCountedFramingExcludedStopsAtEnd) {
  const std::size_t step = GetParam();
  MessageParser parser(Kind::request);
  ASSERT_TRUE(parser.parse_head(kChunkedHead)) << parser.error();
  EXPECT_TRUE(parser.head().chunked);
  EXPECT_FALSE(parser.head().content_length.has_value());
  EXPECT_FALSE(parser.complete());
  EXPECT_FALSE(parser.body_until_eof());

  std::string data = kChunkedBody + kNextRequest;
  Fed fed = feed(parser, data, step);
  EXPECT_TRUE(fed.ok) << parser.error();
  EXPECT_EQ(fed.consumed, kChunkedBody.size());
  EXPECT_EQ(fed.body_bytes, kChunkedPayload);
  EXPECT_TRUE(parser.complete());

  // What followed is a request of its own.
  parser.reset();
  std::string rest = data.substr(fed.consumed);
  ASSERT_EQ(find_head_end(rest), kNextRequest.size());
  ASSERT_TRUE(parser.parse_head(head_of(rest))) << parser.error();
  EXPECT_EQ(parser.head().method, "GET");
  EXPECT_EQ(parser.head().target, "/v2/");
  EXPECT_TRUE(parser.complete());
}

INSTANTIATE_TEST_SUITE_P(SliceSizes, MessageParserChunked,
                         ::testing::Values(1, 2, 3, 5, 7, 13, 64, 0 /* one piece */));

TEST(MessageParserChunkedDetail, ByteByByteProgressNeverCountsFraming) {
  MessageParser parser(Kind::request);
  ASSERT_TRUE(parser.parse_head(kChunkedHead)) << parser.error();
  // Which byte positions of kChunkedBody are payload.
  std::string payload_mask(kChunkedBody.size(), '-');
  auto mark = [&](std::string_view piece) {
    auto at = kChunkedBody.find(piece);
    ASSERT_NE(at, std::string::npos);
    std::fill_n(payload_mask.begin() + static_cast<std::ptrdiff_t>(at), piece.size(), 'P');
  };
  mark("hello");
  mark(" world");
  mark("0123456789");
  mark("abcdef");
  for (std::size_t i = 0; i < kChunkedBody.size(); ++i) {
    auto progress = parser.parse_body(std::string_view(kChunkedBody).substr(i, 1));
    ASSERT_TRUE(progress.ok) << i << ": " << parser.error();
    ASSERT_EQ(progress.consumed, 1u) << i;
    EXPECT_EQ(progress.body_bytes, payload_mask[i] == 'P' ? 1u : 0u)
        << "byte " << i << " '" << shown(kChunkedBody.substr(i, 1)) << "'";
    EXPECT_EQ(parser.complete(), i + 1 == kChunkedBody.size()) << i;
  }
}

TEST(MessageParserChunkedDetail, TrailersDoNotChangeTheHead) {
  // The head was forwarded before the body; trailer fields arriving with
  // the body must not show up as head fields (nor change its framing).
  MessageParser parser(Kind::request);
  ASSERT_TRUE(parser.parse_head(kChunkedHead)) << parser.error();
  const std::size_t fields = parser.head().headers.size();
  auto progress = parser.parse_body("3\r\nabc\r\n0\r\nConnection: close\r\nContent-Length: 7\r\n\r\n");
  EXPECT_TRUE(progress.ok);
  EXPECT_TRUE(parser.complete());
  EXPECT_EQ(progress.body_bytes, 3u);
  EXPECT_EQ(parser.head().headers.size(), fields) << describe(parser.head());
  EXPECT_EQ(parser.head().find("Connection"), nullptr) << describe(parser.head());
  EXPECT_FALSE(parser.head().content_length.has_value());
}

TEST(MessageParserChunkedDetail, BadChunkSizeFails) {
  for (std::string body : {"zz\r\nhello\r\n0\r\n\r\n"s, "5x\r\nhello\r\n0\r\n\r\n"s, "-5\r\nhello\r\n0\r\n\r\n"s,
                           "\r\n"s, "ffffffffffffffffff\r\n"s, "5\nhello\n0\n\n"s,
                           "0\r\nX: a\rb\r\n\r\n"s, "0\r\nX: a\0b\r\n\r\n"s}) {
    for (std::size_t step : {std::size_t{1}, std::size_t{0}}) {
      MessageParser parser(Kind::request);
      ASSERT_TRUE(parser.parse_head(kChunkedHead)) << parser.error();
      Fed fed = feed(parser, body, step);
      EXPECT_FALSE(fed.ok) << shown(body) << " step " << step << " consumed " << fed.consumed;
      EXPECT_FALSE(parser.complete()) << shown(body);
      EXPECT_FALSE(parser.error().empty());
    }
  }
}

// The CRLF after chunk data is part of the framing; the installed
// http-parser is built non-strict and does not check it, so the proxy and
// the upstream would disagree about where the chunk ends.
TEST(MessageParserChunkedDetail, ChunkDataMustEndInCrlf) {
  for (std::string body : {"5\r\nhelloXX0\r\n\r\n"s, "5\r\nhello0\r\n\r\n\r\n"s}) {
    MessageParser parser(Kind::request);
    ASSERT_TRUE(parser.parse_head(kChunkedHead)) << parser.error();
    Fed fed = feed(parser, body, 0);
    EXPECT_FALSE(fed.ok) << shown(body) << ": consumed " << fed.consumed << " payload " << fed.body_bytes
                         << (parser.complete() ? ", message complete" : "");
  }
}

TEST(MessageParserChunkedDetail, ZeroChunkOnly) {
  MessageParser parser(Kind::request);
  ASSERT_TRUE(parser.parse_head(kChunkedHead)) << parser.error();
  auto progress = parser.parse_body("0\r\n\r\n" + kNextRequest);
  EXPECT_TRUE(progress.ok);
  EXPECT_EQ(progress.consumed, 5u);
  EXPECT_EQ(progress.body_bytes, 0u);
  EXPECT_TRUE(parser.complete());
}

// Responses may stack codings before chunked (RFC 9112 §6.1); requests may
// not (see RequestTransferEncoding below): a registry's answer is relayed
// as framed, a client's body must be framed one way only.
TEST(MessageParserChunkedDetail, ResponseCodingsEndingInChunked) {
  MessageParser parser(Kind::response);
  ASSERT_TRUE(parser.parse_head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")) << parser.error();
  EXPECT_TRUE(parser.head().chunked);
  auto progress = parser.parse_body("2\r\nab\r\n0\r\n\r\n");
  EXPECT_TRUE(progress.ok);
  EXPECT_EQ(progress.body_bytes, 2u);
  EXPECT_TRUE(parser.complete());
}

// --------------------------------------------------------------- pipelining

TEST(MessageParserPipelining, TwoRequestsInOneBuffer) {
  const std::string first_head = "PUT /v2/x/manifests/latest HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n";
  const std::string second_head = "GET /v2/x/manifests/latest HTTP/1.1\r\nHost: a\r\n\r\n";
  const std::string buffer = first_head + "{\"a\":" + second_head;

  MessageParser parser(Kind::request);
  std::size_t head_len = find_head_end(buffer);
  ASSERT_EQ(head_len, first_head.size());
  ASSERT_TRUE(parser.parse_head(std::string_view(buffer).substr(0, head_len))) << parser.error();
  EXPECT_EQ(parser.head().method, "PUT");
  auto progress = parser.parse_body(std::string_view(buffer).substr(head_len));
  EXPECT_TRUE(progress.ok);
  EXPECT_EQ(progress.consumed, 5u);
  EXPECT_EQ(progress.body_bytes, 5u);
  EXPECT_TRUE(parser.complete());

  std::string_view rest = std::string_view(buffer).substr(head_len + progress.consumed);
  EXPECT_EQ(rest, second_head);
  parser.reset();
  EXPECT_FALSE(parser.complete());
  EXPECT_TRUE(parser.head().headers.empty());
  EXPECT_TRUE(parser.head().method.empty());
  std::size_t second_len = find_head_end(rest);
  ASSERT_EQ(second_len, second_head.size());
  ASSERT_TRUE(parser.parse_head(rest.substr(0, second_len))) << parser.error();
  EXPECT_EQ(parser.head().method, "GET");
  EXPECT_EQ(parser.head().target, "/v2/x/manifests/latest");
  EXPECT_FALSE(parser.head().content_length.has_value());
  EXPECT_EQ(parser.head().headers.size(), 1u);
  EXPECT_TRUE(parser.complete());
}

TEST(MessageParserPipelining, ManyBodilessRequestsWithOneParser) {
  std::string buffer;
  for (int i = 0; i < 5; ++i) buffer += "GET /v2/" + std::to_string(i) + " HTTP/1.1\r\nHost: a\r\n\r\n";
  MessageParser parser(Kind::request);
  std::string_view rest = buffer;
  for (int i = 0; i < 5; ++i) {
    parser.reset();
    std::size_t len = find_head_end(rest);
    ASSERT_GT(len, 0u);
    ASSERT_TRUE(parser.parse_head(rest.substr(0, len))) << i << ": " << parser.error();
    EXPECT_EQ(parser.head().target, "/v2/" + std::to_string(i));
    EXPECT_TRUE(parser.complete());
    EXPECT_EQ(parser.parse_body(rest.substr(len)).consumed, 0u);
    rest.remove_prefix(len);
  }
  EXPECT_TRUE(rest.empty());
}

TEST(MessageParserPipelining, ResponsesBackToBack) {
  const std::string first = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
  const std::string second = "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n";
  const std::string buffer = first + second;
  MessageParser parser(Kind::response);
  std::size_t len = find_head_end(buffer);
  ASSERT_TRUE(parser.parse_head(std::string_view(buffer).substr(0, len))) << parser.error();
  auto progress = parser.parse_body(std::string_view(buffer).substr(len));
  EXPECT_EQ(progress.consumed, 3u);
  EXPECT_TRUE(parser.complete());
  std::string_view rest = std::string_view(buffer).substr(len + 3);
  parser.reset();
  len = find_head_end(rest);
  ASSERT_TRUE(parser.parse_head(rest.substr(0, len))) << parser.error();
  EXPECT_EQ(parser.head().status, 201);
  EXPECT_EQ(parser.head().reason, "Created");
  progress = parser.parse_body(rest.substr(len));
  EXPECT_EQ(progress.consumed, rest.size() - len);
  EXPECT_EQ(progress.body_bytes, 1u);
  EXPECT_TRUE(parser.complete());
}

// ------------------------------------------------------------- responses

TEST(MessageParserResponse, StatusAndReason) {
  MessageParser parser(Kind::response);
  ASSERT_TRUE(parser.parse_head("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")) << parser.error();
  EXPECT_EQ(parser.head().status, 404);
  EXPECT_EQ(parser.head().reason, "Not Found");
  EXPECT_TRUE(parser.head().method.empty());
  EXPECT_TRUE(parser.complete());
  EXPECT_FALSE(parser.body_until_eof());
  EXPECT_TRUE(parser.head().keep_alive);
}

TEST(MessageParserResponse, HeadResponseWithContentLengthHasNoBody) {
  MessageParser parser(Kind::response);
  parser.reset(/*no_body=*/true);
  ASSERT_TRUE(parser.parse_head("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n"
                                "Docker-Content-Digest: sha256:ab\r\n\r\n"))
      << parser.error();
  EXPECT_TRUE(parser.complete());
  EXPECT_EQ(parser.head().content_length, std::optional<std::uint64_t>(1000));
  EXPECT_FALSE(parser.body_until_eof());
  EXPECT_TRUE(parser.head().keep_alive);
  const std::string next = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  EXPECT_EQ(parser.parse_body(next).consumed, 0u);
  EXPECT_TRUE(parser.finish_at_eof());

  // reset() without the flag forgets it.
  parser.reset();
  ASSERT_TRUE(parser.parse_head(head_of(next))) << parser.error();
  EXPECT_FALSE(parser.complete());
  EXPECT_EQ(parser.parse_body("ok").consumed, 2u);
  EXPECT_TRUE(parser.complete());
}

TEST(MessageParserResponse, HeadResponseChunkedOrUnframedHasNoBody) {
  for (std::string head : {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"s, "HTTP/1.1 200 OK\r\n\r\n"s}) {
    MessageParser parser(Kind::response);
    parser.reset(true);
    ASSERT_TRUE(parser.parse_head(head)) << parser.error();
    EXPECT_TRUE(parser.complete()) << shown(head);
    EXPECT_FALSE(parser.body_until_eof()) << shown(head);
  }
}

// RFC 9112 §6.3 rule 1: 1xx, 204 and 304 responses end at the empty line
// whatever their headers say (a 304 legitimately carries the Content-Length
// the full response would have had).
TEST(MessageParserResponse, BodilessStatusesAreCompleteAfterHead) {
  struct Case {
    std::string head;
    int status;
  };
  const Case cases[] = {
      {"HTTP/1.1 204 No Content\r\n\r\n", 204},
      {"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n", 304},
      {"HTTP/1.1 304 Not Modified\r\nContent-Length: 1000\r\n\r\n", 304},
      {"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", 204},
      {"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n", 204},
      {"HTTP/1.1 100 Continue\r\n\r\n", 100},
      {"HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n", 103},
  };
  for (const auto& c : cases) {
    MessageParser parser(Kind::response);
    ASSERT_TRUE(parser.parse_head(c.head)) << shown(c.head) << ": " << parser.error();
    EXPECT_EQ(parser.head().status, c.status);
    EXPECT_TRUE(parser.complete()) << shown(c.head) << " waits for a body";
    EXPECT_FALSE(parser.body_until_eof()) << shown(c.head);
    const std::string next = "HTTP/1.1 200 OK\r\n\r\n";
    EXPECT_EQ(parser.parse_body(next).consumed, 0u) << shown(c.head) << " took the next response's bytes";
  }
}

TEST(MessageParserResponse, ContinueThenFinalResponse) {
  const std::string buffer =
      "HTTP/1.1 100 Continue\r\n\r\n"
      "HTTP/1.1 201 Created\r\nLocation: /v2/x/blobs/sha256:ab\r\nContent-Length: 0\r\n\r\n";
  MessageParser parser(Kind::response);
  std::size_t len = find_head_end(buffer);
  ASSERT_EQ(len, 25u);
  ASSERT_TRUE(parser.parse_head(std::string_view(buffer).substr(0, len))) << parser.error();
  EXPECT_EQ(parser.head().status, 100);
  EXPECT_EQ(parser.head().reason, "Continue");
  EXPECT_TRUE(parser.complete());
  parser.reset();
  std::string_view rest = std::string_view(buffer).substr(len);
  ASSERT_TRUE(parser.parse_head(rest.substr(0, find_head_end(rest)))) << parser.error();
  EXPECT_EQ(parser.head().status, 201);
  ASSERT_NE(parser.head().find("location"), nullptr);
  EXPECT_EQ(*parser.head().find("location"), "/v2/x/blobs/sha256:ab");
  EXPECT_TRUE(parser.complete());
}

TEST(MessageParserResponse, ReadUntilEof) {
  MessageParser parser(Kind::response);
  ASSERT_TRUE(parser.parse_head("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")) << parser.error();
  EXPECT_FALSE(parser.complete());
  EXPECT_TRUE(parser.body_until_eof());
  EXPECT_FALSE(parser.head().keep_alive);
  EXPECT_FALSE(parser.head().content_length.has_value());
  EXPECT_FALSE(parser.head().chunked);

  auto progress = parser.parse_body("abc");
  EXPECT_TRUE(progress.ok);
  EXPECT_EQ(progress.consumed, 3u);
  EXPECT_EQ(progress.body_bytes, 3u);
  // Anything at all is body, even what looks like a response.
  progress = parser.parse_body("HTTP/1.1 200 OK\r\n\r\n");
  EXPECT_EQ(progress.consumed, 19u);
  EXPECT_EQ(progress.body_bytes, 19u);
  EXPECT_FALSE(parser.complete());
  EXPECT_TRUE(parser.finish_at_eof());
  EXPECT_TRUE(parser.complete());
}

TEST(MessageParserResponse, ReadUntilEofWithEmptyBodyAndHttp10) {
  MessageParser parser(Kind::response);
  ASSERT_TRUE(parser.parse_head("HTTP/1.0 200 OK\r\nServer: x\r\n\r\n")) << parser.error();
  EXPECT_EQ(parser.head().http_major, 1u);
  EXPECT_EQ(parser.head().http_minor, 0u);
  EXPECT_TRUE(parser.body_until_eof());
  EXPECT_FALSE(parser.head().keep_alive);
  EXPECT_TRUE(parser.finish_at_eof());
  EXPECT_TRUE(parser.complete());
}

TEST(MessageParserResponse, NonChunkedTransferEncodingResponseRunsUntilEof) {
  MessageParser parser(Kind::response);
  ASSERT_TRUE(parser.parse_head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n")) << parser.error();
  EXPECT_FALSE(parser.head().chunked);
  EXPECT_TRUE(parser.body_until_eof());
  EXPECT_EQ(parser.parse_body("0\r\n\r\n").consumed, 5u);
  EXPECT_FALSE(parser.complete());
  EXPECT_TRUE(parser.finish_at_eof());
}

TEST(MessageParserResponse, TruncatedBodiesAtEof) {
  {
    MessageParser parser(Kind::response);
    ASSERT_TRUE(parser.parse_head("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")) << parser.error();
    EXPECT_FALSE(parser.body_until_eof());
    EXPECT_EQ(parser.parse_body("0123").consumed, 4u);
    EXPECT_FALSE(parser.finish_at_eof());
    EXPECT_FALSE(parser.complete());
  }
  {
    MessageParser parser(Kind::response);
    ASSERT_TRUE(parser.parse_head("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")) << parser.error();
    EXPECT_FALSE(parser.finish_at_eof());  // nothing of the body at all
  }
  {
    MessageParser parser(Kind::response);
    ASSERT_TRUE(parser.parse_head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")) << parser.error();
    EXPECT_EQ(parser.parse_body("5\r\nhel").consumed, 6u);
    EXPECT_FALSE(parser.finish_at_eof());
  }
  {
    MessageParser parser(Kind::response);
    ASSERT_TRUE(parser.parse_head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")) << parser.error();
    EXPECT_EQ(parser.parse_body("5\r\nhello\r\n0\r\n").consumed, 13u);  // last CRLF missing
    EXPECT_FALSE(parser.finish_at_eof());
  }
  {
    MessageParser parser(Kind::response);
    EXPECT_FALSE(parser.finish_at_eof());  // no head yet
  }
  {
    MessageParser parser(Kind::response);
    ASSERT_TRUE(parser.parse_head("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n")) << parser.error();
    EXPECT_EQ(parser.parse_body("abc").consumed, 3u);
    EXPECT_TRUE(parser.finish_at_eof());  // complete already
  }
}

TEST(MessageParserResponse, ContentLengthWithSurroundingWhitespace) {
  // OWS around a field value is not part of it (RFC 9110 §5.5). http-parser
  // frames these by the length; the head must say so too, or the response
  // looks read-until-close.
  // (http-parser itself refuses a trailing tab: "Content-Length: 5\t".)
  for (std::string head : {"HTTP/1.1 200 OK\r\nContent-Length: 5 \r\n\r\n"s,
                           "HTTP/1.1 200 OK\r\nContent-Length: 5   \r\n\r\n"s,
                           "HTTP/1.1 200 OK\r\nContent-Length:    5\r\n\r\n"s}) {
    MessageParser parser(Kind::response);
    ASSERT_TRUE(parser.parse_head(head)) << shown(head) << ": " << parser.error();
    EXPECT_EQ(parser.head().content_length, std::optional<std::uint64_t>(5)) << describe(parser.head());
    EXPECT_FALSE(parser.body_until_eof()) << shown(head);
    auto progress = parser.parse_body("hello" + "HTTP/1.1 200 OK\r\n\r\n"s);
    EXPECT_EQ(progress.consumed, 5u) << shown(head);
    EXPECT_TRUE(parser.complete()) << shown(head);
  }
}

// ------------------------------------------------------------- keep-alive

TEST(MessageParserKeepAlive, Requests) {
  struct Case {
    std::string head;
    bool keep_alive;
  };
  const Case cases[] = {
      {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", true},
      {"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n", true},
      {"GET / HTTP/1.0\r\n\r\n", false},
      {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
      {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true},
      {"GET / HTTP/1.0\r\nConnection: close\r\n\r\n", false},
  };
  for (const auto& c : cases) {
    MessageParser parser(Kind::request);
    ASSERT_TRUE(parser.parse_head(c.head)) << shown(c.head) << ": " << parser.error();
    EXPECT_EQ(parser.head().keep_alive, c.keep_alive) << shown(c.head);
  }
}

TEST(MessageParserKeepAlive, Responses) {
  struct Case {
    std::string head;
    bool keep_alive;
  };
  const Case cases[] = {
      {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true},
      {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", false},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true},
      {"HTTP/1.1 200 OK\r\n\r\n", false},  // runs until close
      {"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false},
      {"HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n", true},
      {"HTTP/1.1 204 No Content\r\n\r\n", true},
  };
  for (const auto& c : cases) {
    MessageParser parser(Kind::response);
    ASSERT_TRUE(parser.parse_head(c.head)) << shown(c.head) << ": " << parser.error();
    EXPECT_EQ(parser.head().keep_alive, c.keep_alive) << shown(c.head);
  }
}

// ------------------------------------------------------------------- find

TEST(MessageHeadFind, CaseInsensitiveFirstMatch) {
  MessageParser parser(Kind::request);
  ASSERT_TRUE(parser.parse_head("GET / HTTP/1.1\r\nhost: one\r\nX-Dup: first\r\nx-dup: second\r\n"
                                "Docker-Content-Digest: sha256:ab\r\nX-Empty:\r\nX-After: after\r\n\r\n"))
      << parser.error();
  const MessageHead& h = parser.head();
  for (const char* name : {"Host", "HOST", "host", "hOsT"}) {
    ASSERT_NE(h.find(name), nullptr) << name;
    EXPECT_EQ(*h.find(name), "one");
  }
  ASSERT_NE(h.find("X-DUP"), nullptr);
  EXPECT_EQ(*h.find("X-DUP"), "first");
  ASSERT_NE(h.find("docker-content-digest"), nullptr);
  EXPECT_EQ(*h.find("docker-content-digest"), "sha256:ab");
  EXPECT_EQ(h.find("Hos"), nullptr);
  EXPECT_EQ(h.find("Host "), nullptr);
  EXPECT_EQ(h.find("Content-Length"), nullptr);
  EXPECT_EQ(h.find(""), nullptr);
  // An empty value is a field of its own; the next name is not glued to it.
  ASSERT_NE(h.find("X-Empty"), nullptr) << describe(h);
  EXPECT_EQ(*h.find("X-Empty"), "");
  ASSERT_NE(h.find("X-After"), nullptr) << describe(h);
  EXPECT_EQ(*h.find("X-After"), "after");
  EXPECT_EQ(h.headers.size(), 6u) << describe(h);
}

TEST(MessageHeadFind, IequalsIsAsciiOnly) {
  EXPECT_TRUE(ascii_iequals("Content-Length", "content-length"));
  EXPECT_TRUE(ascii_iequals("", ""));
  EXPECT_FALSE(ascii_iequals("a", "ab"));
  EXPECT_FALSE(ascii_iequals("[", "{"));  // 0x5b vs 0x7b: only letters fold
  EXPECT_FALSE(ascii_iequals("@", "`"));
  EXPECT_FALSE(ascii_iequals("\xc3\x89", "\xc3\xa9"));
}

TEST(MessageHeadValues, ValuesKeptByteForByte) {
  MessageParser parser(Kind::request);
  ASSERT_TRUE(parser.parse_head("GET / HTTP/1.1\r\nHost: a\r\nWWW-Thing: Bearer realm=\"x\",  scope=\"a b\"\r\n"
                                "Range: bytes=0-1023\r\nX-Utf8: caf\xc3\xa9\r\n\r\n"))
      << parser.error();
  ASSERT_NE(parser.head().find("WWW-Thing"), nullptr);
  EXPECT_EQ(*parser.head().find("WWW-Thing"), "Bearer realm=\"x\",  scope=\"a b\"");
  EXPECT_EQ(*parser.head().find("Range"), "bytes=0-1023");
  EXPECT_EQ(*parser.head().find("X-Utf8"), "caf\xc3\xa9");
}

// ---------------------------------------------------- malformed / smuggling

struct BadHead {
  std::string head;
  std::string why;
};
void PrintTo(const BadHead& c, std::ostream* os) { *os << c.why << ": \"" << shown(c.head) << "\""; }

class MessageParserRejects : public ::testing::TestWithParam<BadHead> {};

TEST_P(MessageParserRejects, Request) {
  const BadHead& c = GetParam();
  MessageParser parser(Kind::request);
  bool ok = parser.parse_head(c.head);
  EXPECT_FALSE(ok) << c.why << " passed through as: " << describe(parser.head())
                   << (parser.complete() ? " (complete)" : "")
                   << (parser.head().chunked ? " (chunked)" : "")
                   << (parser.head().content_length ? " (CL " + std::to_string(*parser.head().content_length) + ")" : "");
  if (!ok) {
    EXPECT_FALSE(parser.error().empty());
  }
}

INSTANTIATE_TEST_SUITE_P(
    Smuggling, MessageParserRejects,
    ::testing::Values(
        BadHead{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", "CL then TE"},
        BadHead{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", "TE then CL"},
        BadHead{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", "two different CL"},
        BadHead{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", "CL list"},
        BadHead{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", "negative CL"},
        BadHead{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n", "hex CL"},
        BadHead{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 0\r\n\r\n", "CL with inner space"},
        BadHead{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", "CL overflow"},
        BadHead{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n", "space before colon (CL)"},
        BadHead{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", "space before colon (TE)"},
        BadHead{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n",
                "second TE field makes chunked not final"},
        BadHead{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", "request TE not ending in chunked"},
        BadHead{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", "chunked not final"},
        BadHead{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunkedx\r\n\r\n", "not quite chunked"},
        BadHead{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", "identity coding"},
        BadHead{"GET / HTTP/1.1\r\nHost: a\r\nX-Folded: first\r\n second\r\n\r\n", "obs-fold"},
        BadHead{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip,\r\n chunked\r\n\r\n", "obs-fold in TE"},
        BadHead{"GET / HTTP/1.1\r\nHost: a\r\nX-Nul: a\0b\r\n\r\n"s, "NUL in value"},
        BadHead{"GET / HTTP/1.1\r\nHost: a\r\nX-Cr: a\rb\r\n\r\n", "bare CR in value"},
        BadHead{"GET / HTTP/1.1\r\nHost: a\r\nX-Cr: a\rContent-Length: 5\r\n\r\n", "bare CR hiding a field"},
        BadHead{"GET / HTTP/1.1\r\nHost: a\n\nGET /admin HTTP/1.1\r\nHost: b\r\n\r\n",
                "bare LF end of head with a second request behind it"},
        BadHead{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\n\nabcGET /x HTTP/1.1\r\n\r\n",
                "bare LF end of head with body bytes inside the head"},
        BadHead{"GET / HTTP/1.1\r\nHost: a\r\n\nGET /admin HTTP/1.1\r\n\r\n", "CRLF LF ends the head early"},
        BadHead{"GET / HTTP/1.1\r\nHost: a\r\nX-Del: a\x7f" "b\r\n\r\n", "DEL in value"},
        BadHead{"GET / HTTP/1.1\r\n Host: a\r\n\r\n", "leading whitespace on first field"},
        BadHead{"GET / HTTP/1.1\r\nHo st: a\r\n\r\n", "space in name"},
        BadHead{"GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", "tab in target"},
        BadHead{"GET /a\fb HTTP/1.1\r\nHost: a\r\n\r\n", "form feed in target"},
        BadHead{"GET /a\x01z HTTP/1.1\r\nHost: a\r\n\r\n", "control byte in target"},
        BadHead{"GET / HTTP/1.1\r\nHost a\r\n\r\n", "no colon"},
        BadHead{"GET / HTTP/1.1\r\n: a\r\n\r\n", "empty name"},
        BadHead{"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "HTTP/2 preface, whole"},
        BadHead{"PRI * HTTP/2.0\r\n\r\n", "HTTP/2 preface, head part"},
        BadHead{"GET / HTTP/2.0\r\nHost: a\r\n\r\n", "HTTP/2.0 version"},
        BadHead{"GET / HTTP/1.x\r\nHost: a\r\n\r\n", "bad version"},
        BadHead{"GET /\r\n\r\n", "HTTP/0.9"},
        BadHead{"GET / FOO\r\nHost: a\r\n\r\n", "no HTTP version"},
        BadHead{"GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 without Host"},
        BadHead{"hello world\r\n\r\n", "garbage"},
        BadHead{"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", "TLS ClientHello"},
        BadHead{"GET / HTTP/1.1\r\nHost: a\r\n", "head without its end"},
        BadHead{"", "nothing"},
        BadHead{"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\n\r\n", "more than one head"},
        BadHead{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc", "head with its body"}));

// RFC 9112 §2.2 lets a recipient take a bare LF as a line end. The installed
// http-parser does; since the proxy re-serializes the head with CRLF, the
// upstream sees what we parsed. Either refusing or accepting is fine, but if
// accepted, the fields and the framing must be what http-parser used.
TEST(MessageParserRejectsDetail, BareLfLineEndConsistentIfAccepted) {
  MessageParser parser(Kind::request);
  if (!parser.parse_head("POST / HTTP/1.1\r\nHost: a\r\nX-Lf: a\nContent-Length: 5\r\n\r\n")) return;
  ASSERT_EQ(parser.head().headers.size(), 3u) << describe(parser.head());
  EXPECT_EQ(parser.head().headers[1].value, "a");
  EXPECT_EQ(parser.head().content_length, std::optional<std::uint64_t>(5));
  EXPECT_EQ(parser.parse_body("helloGET").consumed, 5u);
  EXPECT_TRUE(parser.complete());
}

// Accepted heads must agree with http-parser's framing: the head's
// content_length/chunked is what the proxy meters and what it forwards.
TEST(MessageParserRejectsDetail, AcceptedHeadsAgreeWithFraming) {
  struct Case {
    std::string head;
    std::uint64_t body;  // bytes http-parser will take as body
  };
  const Case cases[] = {
      {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n", 5},
      {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 \r\n\r\n", 5},
      {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 05\r\n\r\n", 5},
  };
  for (const auto& c : cases) {
    MessageParser parser(Kind::request);
    if (!parser.parse_head(c.head)) continue;  // refusing is fine
    EXPECT_EQ(parser.head().content_length, std::optional<std::uint64_t>(c.body))
        << shown(c.head) << " accepted as " << describe(parser.head());
    auto progress = parser.parse_body(std::string(c.body, 'x') + "GET / HTTP/1.1\r\n\r\n");
    EXPECT_EQ(progress.consumed, c.body) << shown(c.head);
  }
}

TEST(MessageParserRejectsDetail, DuplicateIdenticalContentLength) {
  // RFC 9112 §6.3 allows either rejecting or merging identical values;
  // http-parser rejects, which is the safe choice. Pinned so a change shows.
  MessageParser parser(Kind::request);
  EXPECT_FALSE(parser.parse_head("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"))
      << describe(parser.head());
}

TEST(MessageParserRejectsDetail, ResponseWithContentLengthAndChunked) {
  MessageParser parser(Kind::response);
  EXPECT_FALSE(
      parser.parse_head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"))
      << describe(parser.head());
}

TEST(MessageParserRejectsDetail, GarbageResponses) {
  for (std::string head : {"HTTP/1.1 2000 OK\r\n\r\n"s, "HTTP/1.1 OK\r\n\r\n"s, "SSH-2.0-OpenSSH_9.0\r\n\r\n"s,
                           "HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n"s, "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n"s,
                           "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"s}) {
    MessageParser parser(Kind::response);
    EXPECT_FALSE(parser.parse_head(head)) << shown(head) << " -> " << describe(parser.head());
  }
}

TEST(MessageParserErrors, ErrorSaysWhy) {
  MessageParser parser(Kind::request);
  ASSERT_FALSE(parser.parse_head("POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"));
  EXPECT_NE(parser.error().find("HPE_"), std::string::npos) << parser.error();
  // reset() clears it and the parser works again.
  parser.reset();
  ASSERT_TRUE(parser.parse_head("GET / HTTP/1.1\r\nHost: a\r\n\r\n")) << parser.error();
  EXPECT_TRUE(parser.complete());
}

// ----------------------------------------------------------- large heads

TEST(MessageParserLimits, HeadAsLargeAsMaxHeaderBytesAllows) {
  // --max-header-bytes accepts up to 1 MiB; a head within that limit must
  // parse (http-parser's own default limit is 80 KiB).
  for (std::size_t size : {std::size_t{70} * 1024, std::size_t{200} * 1024, std::size_t{1000} * 1024}) {
    std::string head = "GET /v2/ HTTP/1.1\r\nHost: a\r\n";
    int n = 0;
    while (head.size() + 100 < size) head += "X-Pad-" + std::to_string(n++) + ": " + std::string(60, 'p') + "\r\n";
    head += "\r\n";
    MessageParser parser(Kind::request, HeadLimits{1024 * 1024, 100000});
    EXPECT_TRUE(parser.parse_head(head)) << head.size() << " bytes: " << parser.error();
    EXPECT_EQ(parser.head().headers.size(), static_cast<std::size_t>(n) + 1) << head.size();
  }
}

}  // namespace
}  // namespace regmeter

namespace regmeter {
namespace {

TEST(PlausibleRequestStart, RejectsWhatCannotBecomeARequestLine) {
  EXPECT_TRUE(plausible_request_start(""));
  EXPECT_TRUE(plausible_request_start("G"));
  EXPECT_TRUE(plausible_request_start("GET"));
  EXPECT_TRUE(plausible_request_start("GET /v2/ HT"));
  EXPECT_TRUE(plausible_request_start("\r\nPATCH /v2/x"));
  EXPECT_TRUE(plausible_request_start("M-SEARCH * HTTP/1.1"));
  EXPECT_FALSE(plausible_request_start("\x16\x03\x01\x02\x00"));  // TLS ClientHello
  EXPECT_FALSE(plausible_request_start(" GET / HTTP/1.1"));
  EXPECT_FALSE(plausible_request_start("GE\x01T"));
  EXPECT_FALSE(plausible_request_start(std::string_view("PRI\0", 4)));
  EXPECT_FALSE(plausible_request_start(std::string(40, 'A')));
}

}  // namespace
}  // namespace regmeter

namespace regmeter {
namespace {

TEST(MessageParserFieldValues, RefusesControlBytesAnywhereInAValue) {
  for (std::string value : {std::string("\x01" "abc"), std::string("\x7f"), std::string("a\x01" "b"),
                            std::string("abc\x1f"), std::string("\x0b")}) {
    MessageParser parser(MessageParser::Kind::request);
    std::string head = "GET /v2/ HTTP/1.1\r\nHost: a\r\nX-A: " + value + "\r\n\r\n";
    EXPECT_FALSE(parser.parse_head(head)) << value.size();
  }
  MessageParser parser(MessageParser::Kind::request);
  EXPECT_TRUE(parser.parse_head("GET /v2/ HTTP/1.1\r\nHost: a\r\nUser-Agent: caf\xe9\t\xff\r\n\r\n")) << parser.error();
}

}  // namespace
}  // namespace regmeter

// ======================================================== Hardening II (issue 13)

namespace regmeter {
namespace {

using namespace std::string_literals;
using Kind = MessageParser::Kind;

std::string fields(std::size_t n, std::string_view prefix = "X-F") {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out += std::string(prefix) + std::to_string(i) + ": v\r\n";
  return out;
}

// --------------------------------------------------- item 1: head limits

TEST(HeadLimits, FieldCountDefaultIs100Then431) {
  MessageParser ok(Kind::request);
  ASSERT_TRUE(ok.parse_head("GET /v2/ HTTP/1.1\r\nHost: a\r\n" + fields(99) + "\r\n")) << ok.error();
  EXPECT_EQ(ok.head().headers.size(), 100u);
  MessageParser refused(Kind::request);
  EXPECT_FALSE(refused.parse_head("GET /v2/ HTTP/1.1\r\nHost: a\r\n" + fields(100) + "\r\n"))
      << "101 fields accepted";
  EXPECT_EQ(refused.refusal_status(), 431) << refused.error();
  EXPECT_NE(refused.error().find("header fields"), std::string::npos) << refused.error();
  // It stops at the first field over the limit, not after reading them all.
  EXPECT_LE(refused.head().headers.size(), 100u);
}

TEST(HeadLimits, FieldCountFromTheConfiguredLimit) {
  const std::string head = "GET /v2/ HTTP/1.1\r\nHost: a\r\n" + fields(9) + "\r\n";  // 10 fields
  MessageParser at_limit(Kind::request, HeadLimits{65536, 10});
  EXPECT_TRUE(at_limit.parse_head(head)) << at_limit.error();
  MessageParser below(Kind::request, HeadLimits{65536, 9});
  EXPECT_FALSE(below.parse_head(head));
  EXPECT_EQ(below.refusal_status(), 431);
}

TEST(HeadLimits, ByteLimitIsEnforcedByTheParserToo) {
  const std::string head = "GET /v2/ HTTP/1.1\r\nHost: a\r\nX: " + std::string(2000, 'v') + "\r\n\r\n";
  MessageParser small(Kind::request, HeadLimits{1024, 100});
  EXPECT_FALSE(small.parse_head(head));
  EXPECT_EQ(small.refusal_status(), 431);
  MessageParser enough(Kind::request, HeadLimits{head.size(), 100});
  EXPECT_TRUE(enough.parse_head(head)) << enough.error();
}

TEST(HeadLimits, ResponsesGetAFixedGenerousCap) {
  MessageParser ok(Kind::response);
  ASSERT_TRUE(ok.parse_head("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n" + fields(kResponseHeadLimits.max_fields - 1) + "\r\n"))
      << ok.error();
  MessageParser refused(Kind::response);
  EXPECT_FALSE(refused.parse_head("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n" + fields(kResponseHeadLimits.max_fields) + "\r\n"));
}

TEST(HeadLimits, ConnectionOptionsAreCapped) {
  auto head_with_options = [](std::size_t n, bool request) {
    std::string list;
    for (std::size_t i = 0; i < n; ++i) list += (i ? ", o" : "o") + std::to_string(i);
    return std::string(request ? "GET /v2/ HTTP/1.1\r\nHost: a\r\n" : "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n") +
           "Connection: " + list + "\r\n\r\n";
  };
  for (bool request : {true, false}) {
    MessageParser ok(request ? Kind::request : Kind::response);
    EXPECT_TRUE(ok.parse_head(head_with_options(kMaxConnectionOptions, request))) << ok.error();
    MessageParser refused(request ? Kind::request : Kind::response);
    EXPECT_FALSE(refused.parse_head(head_with_options(kMaxConnectionOptions + 1, request))) << request;
    if (request) {
      EXPECT_EQ(refused.refusal_status(), 431);
    }
  }
  // Split over several Connection fields, they count together; empty list
  // elements do not count.
  MessageParser split(Kind::request);
  std::string head = "GET /v2/ HTTP/1.1\r\nHost: a\r\n";
  for (std::size_t i = 0; i <= kMaxConnectionOptions; ++i) head += "Connection: , o" + std::to_string(i) + ",\r\n";
  EXPECT_FALSE(split.parse_head(head + "\r\n"));
}

// The issue's shape: 15 000 Connection tokens and 6 000 short fields in a
// 60 KB head. It took ~1.5 s to forward; now it is refused (431).
TEST(HeadLimits, TheIssuesHostileHeadIsRefused) {
  std::string head = "GET /v2/ HTTP/1.1\r\nHost: a\r\nConnection: ";
  for (int i = 0; i < 15000; ++i) head += i ? ",c" : "c";
  head += "\r\n";
  for (int i = 0; i < 6000; ++i) head += "x:" + std::to_string(i % 10) + "\r\n";
  head += "\r\n";
  ASSERT_LT(head.size(), 65536u);
  MessageParser parser(Kind::request);
  EXPECT_FALSE(parser.parse_head(head));
  EXPECT_EQ(parser.refusal_status(), 431);
}

// --------------------------------------------------- HeadScanner

struct ScanCase {
  std::string bytes;
  HeadScanner::Status status;
  std::size_t length;  // when complete
  std::string why;
};

HeadScanner::Status scan_in_slices(HeadScanner& scanner, std::string_view bytes, std::size_t step) {
  for (std::size_t at = 0; at < bytes.size() && scanner.status() == HeadScanner::Status::need_more;) {
    std::string_view slice = bytes.substr(at, step);
    std::size_t before = scanner.scanned();
    scanner.scan(slice);
    if (scanner.status() != HeadScanner::Status::need_more) break;
    EXPECT_EQ(scanner.scanned() - before, slice.size()) << "a slice was not scanned whole";
    at += slice.size();
  }
  return scanner.status();
}

TEST(HeadScanner, RequestShapes) {
  using S = HeadScanner::Status;
  const std::string get = "GET /v2/ HTTP/1.1\r\nHost: a\r\n\r\n";
  const ScanCase cases[] = {
      {get, S::complete, get.size(), "a head"},
      {get + "GET /next HTTP/1.1\r\n", S::complete, get.size(), "stops at the end of the head"},
      {"\r\n" + get, S::complete, get.size() + 2, "an empty line first"},
      {"\r\n\r\n\r\n" + get, S::complete, get.size() + 6, "three empty lines first"},
      {"\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n", S::malformed, 0, "nine empty lines and nothing else"},
      {"GET /v2/ HTTP/1.1\r\nHost: a\r\n", S::need_more, 0, "no blank line yet"},
      {"GET /v2/ HTTP/1.1\r\nHost: a\r\n\r", S::need_more, 0, "half the blank line"},
      {"GET /v2/", S::need_more, 0, "half a request line"},
      {"GET /v2/ HTTP/1.1\r\nHost: a\r\nX: \x01\x7f\t\xff\r\n\r\n", S::complete, 39, "value bytes are parse_head's business"},
      // HTTP/0.9 and friends: the request line, once it ends, has no version.
      {"GET /\r\n", S::malformed, 0, "HTTP/0.9 simple request"},
      {"GET /v2/\r\n\r\n", S::malformed, 0, "HTTP/0.9 with a blank line"},
      {"GET / FOO\r\n", S::malformed, 0, "not a version"},
      {"GET / HTTP/1.1 x\r\n", S::malformed, 0, "something after the version"},
      {"GET / HTTP/1.10\r\n", S::malformed, 0, "two-digit minor"},
      {"GET / HTTP/2.0\r\nHost: a\r\n\r\n", S::complete, 27, "HTTP/2.0 has the shape (505 from parse_head)"},
      // Bare LF, every shape: request line, field line, the blank line, leading.
      {"GET /v2/ HTTP/1.1\nHost: a\r\n\r\n", S::malformed, 0, "bare LF ending the request line"},
      {"GET /v2/ HTTP/1.1\r\nHost: a\n\r\n", S::malformed, 0, "bare LF ending a field line"},
      {"GET /v2/ HTTP/1.1\r\nHost: a\r\n\n", S::malformed, 0, "CRLF LF"},
      {"GET /v2/ HTTP/1.1\r\nHost: a\n\n", S::malformed, 0, "LF LF"},
      {"GET /v2/ HTTP/1.1\nHost: a\n\n", S::malformed, 0, "bare LFs only"},
      {"\nGET /v2/ HTTP/1.1\r\nHost: a\r\n\r\n", S::malformed, 0, "a bare LF as the leading empty line"},
      {"\n\n\n", S::malformed, 0, "nothing but LFs"},
      {"GET /v2/ HTTP/1.1\r\nHost: a\r\nX: a\nb\r\n\r\n", S::malformed, 0, "bare LF inside a value"},
      // Bare CR, NUL, obs-fold.
      {"GET /v2/ HTTP/1.1\rHost: a\r\n\r\n", S::malformed, 0, "bare CR"},
      {"GET /v2/ HTTP/1.1\r\nHost: a\r\r\n\r\n", S::malformed, 0, "CR CR LF"},
      {"GET /v2/ HTTP/1.1\r\nX: a\0b\r\n\r\n"s, S::malformed, 0, "NUL in a field"},
      {"GET /v2/\0 HTTP/1.1\r\n"s, S::malformed, 0, "NUL in the request line"},
      {"GET /v2/ HTTP/1.1\r\nX: a\r\n b\r\n\r\n", S::malformed, 0, "obs-fold"},
      {"GET /v2/ HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n", S::malformed, 0, "obs-fold with HTAB"},
  };
  for (const auto& c : cases) {
    for (std::size_t step : {std::size_t{1}, std::size_t{2}, std::size_t{7}, c.bytes.size()}) {
      HeadScanner scanner(true);
      EXPECT_EQ(scan_in_slices(scanner, c.bytes, step == 0 ? 1 : step), c.status)
          << c.why << " (slices of " << step << "): " << scanner.problem();
      if (c.status == HeadScanner::Status::complete) {
        EXPECT_EQ(scanner.scanned(), c.length) << c.why;
      }
      if (c.status == HeadScanner::Status::malformed) {
        EXPECT_STRNE(scanner.problem(), "") << c.why;
      }
    }
    // What the scanner refuses early, parse_head refuses when it is whole.
    if (c.status == HeadScanner::Status::malformed) {
      MessageParser parser(Kind::request);
      EXPECT_FALSE(parser.parse_head(c.bytes)) << c.why;
      EXPECT_EQ(parser.refusal_status(), 400) << c.why;
    }
  }
}

TEST(HeadScanner, ResponsesHaveNoRequestLineRule) {
  HeadScanner scanner(false);
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  EXPECT_EQ(scanner.scan(head + "HTTP/1.1 204 No Content\r\n\r\n"), HeadScanner::Status::complete);
  EXPECT_EQ(scanner.scanned(), head.size());
  scanner.reset();
  EXPECT_EQ(scanner.scanned(), 0u);
  EXPECT_EQ(scanner.scan("HTTP/1.1 200 OK\nX: y\r\n\r\n"), HeadScanner::Status::malformed);
}

TEST(HeadScanner, ScansEachByteOnce) {
  // A head trickling in a byte at a time: scanned() grows by one per byte,
  // nothing is looked at twice (the old code searched the buffer again).
  std::string head = "GET /v2/ HTTP/1.1\r\nHost: a\r\n" + fields(50) + "\r\n";
  HeadScanner scanner(true);
  for (std::size_t i = 0; i < head.size(); ++i) {
    ASSERT_EQ(scanner.status(), HeadScanner::Status::need_more) << i;
    scanner.scan(std::string_view(head).substr(i, 1));
    ASSERT_EQ(scanner.scanned(), i + 1);
  }
  EXPECT_EQ(scanner.status(), HeadScanner::Status::complete);
}

// --------------------------------------------------- item 3: status codes

TEST(MessageParserResponse, StatusCodesOutside100To599AreRefused) {
  for (std::string status : {"000", "099", "600", "999", "001"}) {
    MessageParser parser(Kind::response);
    EXPECT_FALSE(parser.parse_head("HTTP/1.1 " + status + " X\r\nContent-Length: 0\r\n\r\n"))
        << status << " accepted as " << parser.head().status;
  }
  for (std::string status : {"100", "200", "599"}) {
    MessageParser parser(Kind::response);
    EXPECT_TRUE(parser.parse_head("HTTP/1.1 " + status + " X\r\nContent-Length: 0\r\n\r\n")) << status << parser.error();
  }
}

// --------------------------------------------------- item 4: framing

TEST(MessageParserRequest, RequestTransferEncoding) {
  struct Case {
    std::string fields;
    int status;  // 0: accepted
  };
  const Case cases[] = {
      {"Transfer-Encoding: chunked\r\n", 0},
      {"Transfer-Encoding: CHUNKED\r\n", 0},
      {"Transfer-Encoding:  chunked \r\n", 0},
      {"Transfer-Encoding: identity, chunked\r\n", 400},
      {"Transfer-Encoding: ,chunked\r\n", 400},
      {"Transfer-Encoding: chunked,\r\n", 400},
      {"Transfer-Encoding: chunked\r\nTransfer-Encoding:\r\n", 400},
      {"Transfer-Encoding:\r\nTransfer-Encoding: chunked\r\n", 400},
      {"Transfer-Encoding: gzip, chunked\r\n", 400},
      {"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", 400},
      {"Transfer-Encoding: chunked, chunked\r\n", 400},
      {"Transfer-Encoding: chunked;q=1\r\n", 400},
      {"Transfer-Encoding: gzip\r\n", 400},
      {"Transfer-Encoding: identity\r\n", 400},
      {"Transfer-Encoding:\r\n", 400},
      {"Transfer-Encoding: foo\r\n", 501},
      {"Transfer-Encoding: x-custom\r\n", 501},
      {"Transfer-Encoding: foo, chunked\r\n", 400},
  };
  for (const auto& c : cases) {
    MessageParser parser(Kind::request);
    bool ok = parser.parse_head("POST /v2/a/blobs/uploads/ HTTP/1.1\r\nHost: a\r\n" + c.fields + "\r\n");
    EXPECT_EQ(ok, c.status == 0) << c.fields << parser.error();
    if (ok) {
      EXPECT_TRUE(parser.head().chunked) << c.fields;
    } else {
      EXPECT_EQ(parser.refusal_status(), c.status) << c.fields << parser.error();
    }
  }
}

TEST(MessageParserRequest, HostRules) {
  struct Case {
    std::string head;
    bool ok;
  };
  const Case cases[] = {
      {"GET /v2/ HTTP/1.1\r\nHost: registry.example:5080\r\n\r\n", true},
      {"GET /v2/ HTTP/1.1\r\nHost: [::1]:5080\r\n\r\n", true},
      {"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", true},
      {"GET /v2/ HTTP/1.1\r\nHost:\r\n\r\n", true},  // empty: allowed (RFC 9110 §7.2)
      {"GET /v2/ HTTP/1.0\r\n\r\n", true},           // HTTP/1.0 needs none
      {"GET /v2/ HTTP/1.1\r\n\r\n", false},
      {"GET /v2/ HTTP/1.1\r\nX-Host: a\r\n\r\n", false},
      {"GET /v2/ HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", false},
      {"GET /v2/ HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", false},
      {"GET /v2/ HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", false},
      {"GET /v2/ HTTP/1.1\r\nHost: a/b\r\n\r\n", false},
      {"GET /v2/ HTTP/1.1\r\nHost: a b\r\n\r\n", false},
      {"GET /v2/ HTTP/1.1\r\nHost: user@a\r\n\r\n", false},
      {"GET /v2/ HTTP/1.1\r\nHost: a?x\r\n\r\n", false},
      {"GET /v2/ HTTP/1.1\r\nHost: caf\xc3\xa9\r\n\r\n", false},
  };
  for (const auto& c : cases) {
    MessageParser parser(Kind::request);
    EXPECT_EQ(parser.parse_head(c.head), c.ok) << c.head << parser.error();
    if (!c.ok) {
      EXPECT_EQ(parser.refusal_status(), 400) << c.head;
    }
  }
}

TEST(MessageParserContentLength, AtMost2To63Minus1) {
  struct Case {
    std::string value;
    std::optional<std::uint64_t> length;  // nullopt: refused
  };
  const Case cases[] = {
      {"9223372036854775807", 9223372036854775807ull},
      {"0009223372036854775807", 9223372036854775807ull},
      {"00000000000000000000005", 5},
      {"9223372036854775808", std::nullopt},
      {"18446744073709551615", std::nullopt},
      {"9999999999999999999", std::nullopt},
  };
  for (const auto& c : cases) {
    MessageParser parser(Kind::request);
    bool ok = parser.parse_head("PUT /v2/a/manifests/t HTTP/1.1\r\nHost: a\r\nContent-Length: " + c.value + "\r\n\r\n");
    EXPECT_EQ(ok, c.length.has_value()) << c.value << ": " << parser.error();
    if (ok) {
      EXPECT_EQ(parser.head().content_length, c.length) << c.value;
    } else {
      EXPECT_EQ(parser.refusal_status(), 400);
    }
  }
}

const std::string kChunkedPatch =
    "PATCH /v2/a/blobs/uploads/u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";

TEST(MessageParserChunkedDetail, ChunkExtensionsAtMost4KiB) {
  for (std::size_t step : {std::size_t{1}, std::size_t{0}}) {
    // ";" + 4095 bytes: 4096 bytes of extension.
    std::string ok_body = "3;" + std::string(kMaxChunkExtensionBytes - 1, 'e') + "\r\nabc\r\n0\r\n\r\n";
    MessageParser ok(Kind::request);
    ASSERT_TRUE(ok.parse_head(kChunkedPatch)) << ok.error();
    Fed fed = feed(ok, ok_body, step);
    EXPECT_TRUE(fed.ok) << ok.error();
    EXPECT_TRUE(ok.complete());

    for (std::string bad : {"3;" + std::string(kMaxChunkExtensionBytes, 'e') + "\r\nabc\r\n0\r\n\r\n",
                            "3" + std::string(kMaxChunkExtensionBytes, ' ') + ";x\r\nabc\r\n0\r\n\r\n",
                            "0;" + std::string(kMaxChunkExtensionBytes, 'e') + "\r\n\r\n",
                            "3;a\x01" "b\r\nabc\r\n0\r\n\r\n"s, "3;a\x7f\r\nabc\r\n0\r\n\r\n"s}) {
      MessageParser parser(Kind::request);
      ASSERT_TRUE(parser.parse_head(kChunkedPatch)) << parser.error();
      Fed refused = feed(parser, bad, step);
      EXPECT_FALSE(refused.ok) << bad.size() << " bytes accepted, step " << step;
    }
  }
  // Extensions on every chunk are each measured on their own.
  std::string body;
  for (int i = 0; i < 4; ++i) body += "1;" + std::string(4000, 'e') + "\r\nx\r\n";
  MessageParser parser(Kind::request);
  ASSERT_TRUE(parser.parse_head(kChunkedPatch)) << parser.error();
  Fed fed = feed(parser, body + "0\r\n\r\n", 0);
  EXPECT_TRUE(fed.ok) << parser.error();
}

// --------------------------------------------------- item 2: trailers

struct Relayed {
  std::string bytes;  // what a relay forwards (move_body's rule)
  bool ok = true;
  bool complete = false;
};
// Feeds `body` in slices and builds what move_body would send on.
Relayed relay(MessageParser& parser, std::string_view body, std::size_t step) {
  Relayed out;
  if (step == 0) step = body.size();
  for (std::size_t at = 0; at < body.size() && !parser.complete();) {
    std::string_view slice = body.substr(at, step);
    auto progress = parser.parse_body(slice);
    EXPECT_LE(progress.relayed, progress.consumed);
    out.bytes.append(slice.substr(0, progress.relayed));
    if (!progress.ok) {
      out.ok = false;
      return out;
    }
    at += progress.consumed;
    if (progress.consumed < slice.size()) break;
  }
  out.complete = parser.complete();
  if (out.complete && parser.trailers_dropped()) out.bytes += "\r\n";
  return out;
}

TEST(MessageParserTrailers, ValidTrailersAreCheckedThenDropped) {
  const std::string body = "3\r\nabc\r\n0\r\nX-Checksum: sha256:ab\r\nOther: 1\t2\r\nEmpty:\r\n\r\n";
  for (std::size_t step : {std::size_t{1}, std::size_t{2}, std::size_t{5}, std::size_t{0}}) {
    MessageParser parser(Kind::request);
    ASSERT_TRUE(parser.parse_head(kChunkedPatch)) << parser.error();
    Relayed out = relay(parser, body + kNextRequest, step);
    EXPECT_TRUE(out.ok) << parser.error();
    EXPECT_TRUE(out.complete);
    EXPECT_TRUE(parser.trailers_dropped());
    EXPECT_EQ(out.bytes, "3\r\nabc\r\n0\r\n\r\n") << "step " << step;
  }
  // Without trailers every byte is relayed as it came.
  MessageParser plain(Kind::request);
  ASSERT_TRUE(plain.parse_head(kChunkedPatch));
  Relayed out = relay(plain, "3;x=1\r\nabc\r\n0;y\r\n\r\n", 0);
  EXPECT_TRUE(out.complete);
  EXPECT_FALSE(plain.trailers_dropped());
  EXPECT_EQ(out.bytes, "3;x=1\r\nabc\r\n0;y\r\n\r\n");
}

TEST(MessageParserTrailers, SmuggledRequestAsATrailerIsRefused) {
  const std::string smuggled = "3\r\nabc\r\n0\r\nGET /v2/SMUGGLED HTTP/1.1\r\nHost: h\r\n\r\n";
  for (std::size_t step : {std::size_t{1}, std::size_t{0}}) {
    MessageParser parser(Kind::request);
    ASSERT_TRUE(parser.parse_head(kChunkedPatch));
    Relayed out = relay(parser, smuggled, step);
    EXPECT_FALSE(out.ok) << "relayed: " << out.bytes;
    EXPECT_EQ(out.bytes.find("SMUGGLED"), std::string::npos) << out.bytes;
  }
}

TEST(MessageParserTrailers, MalformedTrailerLines) {
  for (std::string trailer : {"GET / HTTP/1.1\r\n"s, "X-A\r\n"s, ": v\r\n"s, "X A: v\r\n"s, "X-A : v\r\n"s,
                              "X-A: a\x01" "b\r\n"s, "X-A: \x7f\r\n"s, "X-A: a\0b\r\n"s, "X-A: a\rb\r\n"s,
                              "X-A: a\nb\r\n"s, "X-A: a\n"s, " X-A: a\r\n"s, "X-A: a\r\n\tb\r\n"s,
                              "\xc3\xa9: a\r\n"s}) {
    MessageParser parser(Kind::request);
    ASSERT_TRUE(parser.parse_head(kChunkedPatch));
    Relayed out = relay(parser, "0\r\n" + trailer + "\r\n", 0);
    EXPECT_FALSE(out.ok) << shown(trailer) << " accepted";
  }
}

TEST(MessageParserTrailers, CountedAgainstTheHeadsLimits) {
  // The head has 2 fields of a limit of 5: three trailer fields fit, four do not.
  auto run = [](std::size_t trailers, HeadLimits limits) {
    MessageParser parser(Kind::request, limits);
    EXPECT_TRUE(parser.parse_head(kChunkedPatch)) << parser.error();
    std::string body = "0\r\n";
    for (std::size_t i = 0; i < trailers; ++i) {
      body.push_back('T');  // appended piece by piece: GCC 12 sees a false -Wrestrict in "T" + string
      body += std::to_string(i);
      body += ": v\r\n";
    }
    return relay(parser, body + "\r\n", 1);
  };
  EXPECT_TRUE(run(3, {65536, 5}).ok);
  EXPECT_FALSE(run(4, {65536, 5}).ok);
  // Bytes: what the head left of the budget.
  const std::size_t budget = kChunkedPatch.size() + 20;
  EXPECT_TRUE(run(2, {budget, 100}).ok);   // "T0: v\r\nT1: v\r\n" = 14 bytes
  EXPECT_FALSE(run(3, {budget, 100}).ok);  // 21
  // The end of a body without trailers never counts, even with nothing left.
  MessageParser full(Kind::request, {kChunkedPatch.size(), 100});
  ASSERT_TRUE(full.parse_head(kChunkedPatch)) << full.error();
  EXPECT_TRUE(relay(full, "0\r\n\r\n", 0).complete);
}

TEST(MessageParserTrailers, ResponsesToo) {
  MessageParser parser(Kind::response);
  ASSERT_TRUE(parser.parse_head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"));
  Relayed out = relay(parser, "2\r\nok\r\n0\r\nX-Sum: 1\r\n\r\n", 0);
  EXPECT_TRUE(out.complete);
  EXPECT_EQ(out.bytes, "2\r\nok\r\n0\r\n\r\n");
  MessageParser bad(Kind::response);
  ASSERT_TRUE(bad.parse_head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"));
  EXPECT_FALSE(relay(bad, "0\r\nHTTP/1.1 200 OK\r\n\r\n", 0).ok);
}

}  // namespace
}  // namespace regmeter
