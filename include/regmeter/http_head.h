// HTTP/1.x message framing. It owns no bytes: the caller hands it one
// complete head (parsed by http-parser, after our own strictness checks),
// then body bytes as they arrive, and it says where the message ends and how
// many of those bytes were payload (as opposed to chunk framing). The bytes
// themselves are moved elsewhere. Body framing is our own, strict code:
// http-parser 2.9 in its default build lets a missing CRLF after chunk data
// through, which a stricter upstream would read differently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <http_parser.h>

namespace regmeter {

struct HeaderField {
  std::string name;
  std::string value;
};

struct MessageHead {
  // Request line.
  std::string method;
  std::string target;
  // Status line.
  int status = 0;
  std::string reason;

  unsigned http_major = 1;
  unsigned http_minor = 1;
  std::vector<HeaderField> headers;  // in order, names as received

  bool keep_alive = true;    // http_should_keep_alive() for this message
  bool chunked = false;      // Transfer-Encoding whose final coding is chunked
  std::optional<std::uint64_t> content_length;

  // First header with this name (case-insensitive), or nullptr.
  const std::string* find(std::string_view name) const;
};

// Whether `prefix` (the first bytes of a request, head not complete yet)
// can still become an HTTP/1.x request line: optional empty lines, then a
// method token. A TLS ClientHello sent to the plain port fails at once, so
// the client hears "no" now instead of after --header-timeout.
bool plausible_request_start(std::string_view prefix);

// Finds the end of a head ("\r\n\r\n") in data; returns the head's length
// including that terminator, or 0 when it is not there yet.
std::size_t find_head_end(std::string_view data);

class MessageParser {
 public:
  enum class Kind { request, response };
  explicit MessageParser(Kind kind);
  MessageParser(const MessageParser&) = delete;
  MessageParser& operator=(const MessageParser&) = delete;

  // Ready for the next message. `no_body` is for responses to HEAD: the
  // head may announce a length, but no body follows.
  void reset(bool no_body = false);

  // Parses one complete head (as found by find_head_end). Returns false on a
  // malformed head; error() says why. Afterwards head() is filled and
  // complete() is true when the message has no body at all.
  bool parse_head(std::string_view head_bytes);

  struct BodyProgress {
    std::size_t consumed = 0;    // bytes of input that belong to this message
    std::uint64_t body_bytes = 0;  // of those, payload bytes (chunk framing excluded)
    bool ok = true;
  };
  // Feeds body bytes; stops at the end of the message, so bytes after it
  // (a pipelined request) are not consumed.
  BodyProgress parse_body(std::string_view data);
  // The peer closed. Ends a read-until-close response body; false when the
  // message was cut short.
  bool finish_at_eof();

  const MessageHead& head() const { return head_; }
  bool complete() const { return complete_; }
  // parse_head failed because the version is not HTTP/1.0 or 1.1 (→ 505).
  bool version_unsupported() const { return version_unsupported_; }
  // True when the body runs until the connection closes (response without
  // Content-Length or chunked).
  bool body_until_eof() const;
  std::string error() const;

 private:
  static int on_url(http_parser*, const char*, std::size_t);
  static int on_status(http_parser*, const char*, std::size_t);
  static int on_header_field(http_parser*, const char*, std::size_t);
  static int on_header_value(http_parser*, const char*, std::size_t);
  static int on_headers_complete(http_parser*);
  static int on_message_complete(http_parser*);
  bool check_raw_head(std::string_view bytes);
  bool decide_framing();
  BodyProgress parse_chunked(std::string_view data);

  // How the body ends.
  enum class Framing { none, length, chunked, until_eof };
  // Where a chunked body is.
  enum class ChunkState { size, size_spaces, extension, size_lf, data, data_cr, data_lf, trailer_start, trailer,
                          trailer_lf, final_lf };

  Kind kind_;
  http_parser parser_{};
  http_parser_settings settings_{};
  MessageHead head_;
  bool no_body_ = false;
  bool in_value_ = false;
  bool headers_done_ = false;
  bool complete_ = false;
  bool version_unsupported_ = false;
  std::string local_error_;
  Framing framing_ = Framing::none;
  std::uint64_t remaining_ = 0;  // body bytes left (length) or in this chunk (chunked)
  ChunkState chunk_state_ = ChunkState::size;
  int size_digits_ = 0;
  std::size_t trailer_bytes_ = 0;
};

bool iequals(std::string_view a, std::string_view b);

}  // namespace regmeter
