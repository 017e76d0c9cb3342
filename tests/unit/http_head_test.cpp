// MessageParser framing over http-parser 2.9.4: one head, then body slices,
// stopping exactly at the end of the message; smuggling-shaped inputs refused.
//
// Where http-parser lets something through that the proxy must answer with
// 400, the test asserts the refusal (parse_head false) and its failure
// message says what the parser produced instead.
#include "regmeter/http_head.h"

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

TEST(MessageParserChunkedDetail, TransferCodingsEndingInChunked) {
  MessageParser parser(Kind::request);
  ASSERT_TRUE(parser.parse_head("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"))
      << parser.error();
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
  EXPECT_TRUE(iequals("Content-Length", "content-length"));
  EXPECT_TRUE(iequals("", ""));
  EXPECT_FALSE(iequals("a", "ab"));
  EXPECT_FALSE(iequals("[", "{"));  // 0x5b vs 0x7b: only letters fold
  EXPECT_FALSE(iequals("@", "`"));
  EXPECT_FALSE(iequals("\xc3\x89", "\xc3\xa9"));
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
    MessageParser parser(Kind::request);
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
