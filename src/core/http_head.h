// HTTP/1.x message framing. It owns no bytes: the caller hands it one
// complete head (found by HeadScanner, core/head_scanner.h; parsed by
// http-parser, after our own strictness checks), then body bytes as they
// arrive, and it says where the message ends and how many of those bytes
// were payload (as opposed to chunk framing). The bytes themselves are moved
// elsewhere. Body framing is our own, strict code:
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

#include "core/ascii.h"
#include "core/head_scanner.h"

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
  bool chunked = false;      // requests: Transfer-Encoding is exactly "chunked"; responses: its final coding is
  std::optional<std::uint64_t> content_length;

  // First header with this name (case-insensitive), or nullptr. Linear in
  // the fields: the proxy asks a constant number of times per head (Host and
  // User-Agent of a request, Location of an answer that opens an upload).
  const std::string* find(std::string_view name) const;
};

// What one head may hold. A chunked body's trailer section counts against
// the same budget as the head it follows (bytes and fields together).
struct HeadLimits {
  std::size_t max_bytes = 64 * 1024;  // --max-header-bytes
  std::size_t max_fields = 100;       // --max-header-fields
};
// An upstream's answer: fixed and generous (a registry sends a dozen fields).
inline constexpr HeadLimits kResponseHeadLimits{256 * 1024, 1000};
// Options the Connection fields of one head may list, all fields together.
// Each names a field to drop; real clients send one or two.
inline constexpr std::size_t kMaxConnectionOptions = 64;
// Bytes of extensions (and whitespace before them) on one chunk-size line.
inline constexpr std::size_t kMaxChunkExtensionBytes = 4096;

// Calls `visit(element)` for each element of a comma-separated field value
// (RFC 9110 §5.6.1), without its surrounding whitespace. Empty elements are
// visited too, so that framing fields can refuse them.
template <class Visit>
void for_each_list_element(std::string_view list, Visit&& visit) {
  while (true) {
    auto comma = list.find(',');
    visit(ascii_trim(list.substr(0, comma)));
    if (comma == std::string_view::npos) return;
    list.remove_prefix(comma + 1);
  }
}

// Shown a body's payload bytes (chunk framing removed) as they are parsed,
// for the few responses whose content is read aside (error bodies,
// manifests). The view is only valid during the call.
class PayloadObserver {
 public:
  virtual void payload(std::string_view bytes) = 0;

 protected:
  ~PayloadObserver() = default;
};

class MessageParser {
 public:
  enum class Kind { request, response };
  // Requests default to the default --max-header-bytes / --max-header-fields,
  // responses to kResponseHeadLimits.
  explicit MessageParser(Kind kind);
  MessageParser(Kind kind, HeadLimits limits);
  MessageParser(const MessageParser&) = delete;
  MessageParser& operator=(const MessageParser&) = delete;

  // Ready for the next message. `no_body` is for responses to HEAD: the
  // head may announce a length, but no body follows.
  void reset(bool no_body = false);

  // Parses one complete head (as found by HeadScanner). Returns false on a
  // malformed head; error() says why and refusal_status() what to answer.
  // Afterwards head() is filled and complete() is true when the message has
  // no body at all.
  bool parse_head(std::string_view head_bytes);

  struct BodyProgress {
    std::size_t consumed = 0;    // bytes of input that belong to this message
    // Of those, how many (always a prefix) are relayed. The rest is a chunked
    // body's trailer section: validated, then dropped (see trailers_dropped).
    std::size_t relayed = 0;
    std::uint64_t body_bytes = 0;  // of those, payload bytes (chunk framing excluded)
    bool ok = true;
  };
  // Feeds body bytes; stops at the end of the message, so bytes after it
  // (a pipelined request) are not consumed.
  BodyProgress parse_body(std::string_view data);
  // Kept across reset(); null (the default) shows nothing to anyone.
  void set_payload_observer(PayloadObserver* observer) { observer_ = observer; }
  // The peer closed. Ends a read-until-close response body; false when the
  // message was cut short.
  bool finish_at_eof();

  const MessageHead& head() const { return head_; }
  bool complete() const { return complete_; }
  // The chunked body had trailer fields, which were checked and not relayed:
  // the relay ends the body with the empty line ("\r\n") in their place.
  bool trailers_dropped() const { return dropping_trailers_; }
  // The status a refused request gets: 400, 431 (a head limit), 501 (a
  // transfer coding we do not implement) or 505 (not HTTP/1.0 or 1.1).
  int refusal_status() const { return refusal_status_; }
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
  bool refuse(const char* why, int status = 400);
  bool check_fields();
  bool decide_framing(std::size_t transfer_encodings);
  BodyProgress parse_chunked(std::string_view data);

  // How the body ends.
  enum class Framing { none, length, chunked, until_eof };
  // Where a chunked body is.
  enum class ChunkState { size, size_spaces, extension, size_lf, data, data_cr, data_lf, trailer_start, trailer_name,
                          trailer_value, trailer_lf, final_lf };

  Kind kind_;
  HeadLimits limits_;
  http_parser parser_{};
  http_parser_settings settings_{};
  MessageHead head_;
  bool no_body_ = false;
  bool in_value_ = false;
  bool headers_done_ = false;
  bool complete_ = false;
  int refusal_status_ = 400;
  std::string local_error_;
  Framing framing_ = Framing::none;
  std::uint64_t remaining_ = 0;  // body bytes left (length) or in this chunk (chunked)
  ChunkState chunk_state_ = ChunkState::size;
  int size_digits_ = 0;
  std::size_t extension_bytes_ = 0;  // on the current chunk-size line
  // What the trailer section may still take: the head's budget minus the head.
  std::size_t trailer_bytes_left_ = 0;
  std::size_t trailer_fields_left_ = 0;
  bool dropping_trailers_ = false;
  PayloadObserver* observer_ = nullptr;
};


}  // namespace regmeter
