#include "core/http_head.h"

#include <algorithm>
#include <cstring>
#include <optional>

#include "core/ascii.h"

namespace regmeter {

const std::string* MessageHead::find(std::string_view name) const {
  for (const auto& field : headers)
    if (ascii_iequals(field.name, name)) return &field.value;
  return nullptr;
}

namespace {

// RFC 9110 token characters (header names).
bool is_tchar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != 0;
}

bool is_token(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return is_tchar(static_cast<unsigned char>(c)); });
}

// Field values: visible bytes, SP, HTAB and obs-text only (RFC 9110 §5.5).
bool is_field_value_byte(unsigned char c) { return (c >= 0x20 || c == '\t') && c != 0x7f; }

// Host = uri-host [ ":" port ] (RFC 9110 §7.2): reg-name, IPv4 or an IP
// literal in brackets, so unreserved, pct-encoded, sub-delims, ':', '[', ']'.
// Nothing that could end the authority ('/', '?', '#', '@') or a URL
// regmeter builds from it (Location rewriting).
bool is_host_value(std::string_view value) {
  for (char c : value) {
    bool alnum = (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
    if (!alnum && std::string_view("-._~%!$&'()*+,;=:[]").find(c) == std::string_view::npos) return false;
  }
  return true;
}

// The codings of the IANA registry (and identity, since withdrawn): a
// request using one of them alone is framed in a way we refuse (400); any
// other coding is one we do not implement (501, RFC 9112 §6.1).
bool is_registered_coding(std::string_view coding) {
  for (std::string_view known : {"chunked", "compress", "deflate", "gzip", "identity", "trailers", "x-compress", "x-gzip"})
    if (ascii_iequals(coding, known)) return true;
  return false;
}

constexpr int kMaxChunkSizeDigits = 15;  // < 2^60: no overflow
constexpr std::uint64_t kMaxContentLength = 0x7fffffffffffffffull;  // 2^63 - 1

}  // namespace

// ---------------------------------------------------------------- MessageParser

MessageParser::MessageParser(Kind kind)
    : MessageParser(kind, kind == Kind::request ? HeadLimits{} : kResponseHeadLimits) {}

MessageParser::MessageParser(Kind kind, HeadLimits limits) : kind_(kind), limits_(limits) {
  // http-parser's own head limit (80 KiB by default) is process-wide. Ours
  // (--max-header-bytes, at most 1 MiB) is enforced before a head gets here,
  // so lift its limit above that once.
  static const bool lifted = [] {
    http_parser_set_max_header_size(2 * 1024 * 1024);
    return true;
  }();
  (void)lifted;
  http_parser_settings_init(&settings_);
  settings_.on_url = &on_url;
  settings_.on_status = &on_status;
  settings_.on_header_field = &on_header_field;
  settings_.on_header_value = &on_header_value;
  settings_.on_headers_complete = &on_headers_complete;
  settings_.on_message_complete = &on_message_complete;
  reset();
}

void MessageParser::reset(bool no_body) {
  http_parser_init(&parser_, kind_ == Kind::request ? HTTP_REQUEST : HTTP_RESPONSE);
  parser_.data = this;
  head_ = MessageHead{};
  no_body_ = no_body;
  in_value_ = false;
  headers_done_ = false;
  complete_ = false;
  local_error_.clear();
  refusal_status_ = 400;
  framing_ = Framing::none;
  remaining_ = 0;
  chunk_state_ = ChunkState::size;
  size_digits_ = 0;
  extension_bytes_ = 0;
  trailer_bytes_left_ = 0;
  trailer_fields_left_ = 0;
  dropping_trailers_ = false;
}

bool MessageParser::refuse(const char* why, int status) {
  local_error_ = why;
  refusal_status_ = status;
  return false;
}

static MessageParser* self(http_parser* p) { return static_cast<MessageParser*>(p->data); }

int MessageParser::on_url(http_parser* p, const char* at, std::size_t len) {
  self(p)->head_.target.append(at, len);
  return 0;
}

int MessageParser::on_status(http_parser* p, const char* at, std::size_t len) {
  self(p)->head_.reason.append(at, len);
  return 0;
}

int MessageParser::on_header_field(http_parser* p, const char* at, std::size_t len) {
  auto* s = self(p);
  if (s->head_.headers.empty() || s->in_value_) {
    // Stops http-parser at the first field over the limit: a head of
    // thousands of tiny fields costs no more than the limit's worth.
    if (s->head_.headers.size() >= s->limits_.max_fields) {
      s->refuse("more header fields than the limit allows", 431);
      return 1;
    }
    s->head_.headers.emplace_back();
    s->in_value_ = false;
  }
  s->head_.headers.back().name.append(at, len);
  return 0;
}

int MessageParser::on_header_value(http_parser* p, const char* at, std::size_t len) {
  auto* s = self(p);
  s->in_value_ = true;
  s->head_.headers.back().value.append(at, len);
  return 0;
}

int MessageParser::on_headers_complete(http_parser* p) {
  auto* s = self(p);
  MessageHead& head = s->head_;
  head.http_major = p->http_major;
  head.http_minor = p->http_minor;
  head.keep_alive = http_should_keep_alive(p) != 0;
  if (s->kind_ == Kind::request)
    head.method = http_method_str(static_cast<http_method>(p->method));
  else
    head.status = static_cast<int>(p->status_code);
  s->headers_done_ = true;
  // 1: "no body follows". Bodies are framed by our own code after the head,
  // so http-parser stops here for every message.
  return 1;
}

int MessageParser::on_message_complete(http_parser* p) {
  http_parser_pause(p, 1);
  return 0;
}

bool MessageParser::parse_head(std::string_view bytes) {
  const bool request = kind_ == Kind::request;
  if (bytes.size() > limits_.max_bytes) return refuse("head larger than the limit allows", 431);
  // The line rules http-parser is lenient about (bare LF, bare CR, NUL,
  // obs-fold, HTTP/0.9), the same ones that refuse an incomplete head early.
  HeadScanner scanner(request);
  switch (scanner.scan(bytes)) {
    case HeadScanner::Status::malformed: return refuse(scanner.problem());
    case HeadScanner::Status::need_more: return refuse("the head does not end with an empty line");
    case HeadScanner::Status::complete:
      if (scanner.scanned() != bytes.size()) return refuse("the head does not end where its blank line is");
      break;
  }
  // One allocation for the fields (growing a vector of thousands of them
  // moved and faulted more than http-parser cost).
  head_.headers.reserve(std::min(scanner.lines() - 1, limits_.max_fields));
  std::size_t parsed = http_parser_execute(&parser_, &settings_, bytes.data(), bytes.size());
  auto err = HTTP_PARSER_ERRNO(&parser_);
  if (err != HPE_OK && err != HPE_PAUSED) return false;  // error() says why (ours, when a callback refused)
  // The head must end exactly where the caller's head ends: no second
  // message or body bytes hiding inside it.
  if (!headers_done_ || parsed != bytes.size()) return refuse("the head does not end where its blank line is");
  if (head_.http_major != 1 || head_.http_minor > 1)
    return refuse("HTTP version not supported (only HTTP/1.0 and HTTP/1.1)", 505);
  if (request) {
    for (unsigned char c : head_.target)
      if (c <= 0x20 || c >= 0x7f) return refuse("control or non-ASCII byte in the request target");
  } else if (head_.status < 100 || head_.status > 599) {
    // RFC 9110 §15: three digits, 100-599. Relayed, "HTTP/1.1 0" is not a
    // status line at all, and it would be counted as the client's fault.
    return refuse("status code outside 100-599");
  }
  if (!check_fields()) return false;
  trailer_bytes_left_ = limits_.max_bytes - bytes.size();
  trailer_fields_left_ = limits_.max_fields - head_.headers.size();
  return true;
}

// One pass over the fields: names and values, Host, the Connection options'
// count; then the framing.
bool MessageParser::check_fields() {
  const bool request = kind_ == Kind::request;
  std::size_t hosts = 0, connection_options = 0, transfer_encodings = 0;
  for (auto& field : head_.headers) {
    if (!is_token(field.name)) return refuse("header name with characters that are not allowed");
    // http-parser skips this check for a value's first byte.
    for (char c : field.value)
      if (!is_field_value_byte(static_cast<unsigned char>(c))) return refuse("control character in a header value");
    std::string_view trimmed = ascii_trim(field.value);
    if (trimmed.size() != field.value.size()) field.value = std::string(trimmed);
    if (ascii_iequals(field.name, "Host")) {
      ++hosts;
      if (!is_host_value(field.value)) return refuse("invalid Host value");
    } else if (ascii_iequals(field.name, "Connection")) {
      for_each_list_element(field.value, [&](std::string_view option) { connection_options += !option.empty(); });
    } else if (ascii_iequals(field.name, "Transfer-Encoding")) {
      ++transfer_encodings;
    }
  }
  if (connection_options > kMaxConnectionOptions)
    return refuse("more Connection options than the limit allows (64)", request ? 431 : 400);
  if (request) {
    // RFC 9112 §3.2.
    if (hosts > 1) return refuse("more than one Host field");
    if (hosts == 0 && head_.http_minor == 1) return refuse("HTTP/1.1 request without Host");
  }
  return decide_framing(transfer_encodings);
}

// RFC 9112 §6.3: how the body ends.
bool MessageParser::decide_framing(std::size_t transfer_encodings) {
  const bool request = kind_ == Kind::request;
  // Transfer-Encoding: the codings of every such field, in order.
  std::size_t codings = 0, chunked_count = 0;
  bool empty_coding = false;
  std::string_view first_coding, last_coding;
  std::optional<std::uint64_t> length;
  int length_fields = 0;
  for (const auto& field : head_.headers) {
    if (transfer_encodings > 0 && ascii_iequals(field.name, "Transfer-Encoding")) {
      for_each_list_element(field.value, [&](std::string_view coding) {
        if (coding.empty()) {
          empty_coding = true;
          return;
        }
        if (codings++ == 0) first_coding = coding;
        last_coding = coding;
        if (ascii_iequals(coding, "chunked")) ++chunked_count;
      });
    } else if (ascii_iequals(field.name, "Content-Length")) {
      ++length_fields;
      const std::string& text = field.value;
      if (text.empty()) return refuse("invalid Content-Length");
      std::uint64_t value = 0;
      for (char c : text) {
        if (c < '0' || c > '9') return refuse("invalid Content-Length");
        auto digit = static_cast<std::uint64_t>(c - '0');
        if (value > (kMaxContentLength - digit) / 10) return refuse("Content-Length above 2^63-1");
        value = value * 10 + digit;
      }
      length = value;
    }
  }
  const bool has_transfer_encoding = transfer_encodings > 0;
  if (length_fields > 1) return refuse("more than one Content-Length");
  if (has_transfer_encoding && length) return refuse("both Transfer-Encoding and Content-Length");
  head_.content_length = length;
  if (request && has_transfer_encoding) {
    // Only "chunked", alone, frames a request body we relay: any other list
    // (gzip, chunked; identity, chunked; ",chunked"; an empty second field)
    // is read differently by different servers (RFC 9112 §6.1, §6.3).
    bool only_chunked = codings == 1 && !empty_coding && ascii_iequals(first_coding, "chunked");
    if (!only_chunked) {
      if (codings == 1 && !empty_coding && is_token(first_coding) && !is_registered_coding(first_coding))
        return refuse("Transfer-Encoding with a coding regmeter does not implement (only chunked is relayed)", 501);
      return refuse("Transfer-Encoding other than exactly \"chunked\"");
    }
  }
  // Responses: chunked counts only as the final coding, once.
  head_.chunked = has_transfer_encoding && chunked_count == 1 && ascii_iequals(last_coding, "chunked");
  if (has_transfer_encoding && chunked_count > (head_.chunked ? 1u : 0u)) return refuse("chunked applied more than once");
  bool bodiless_status = !request && (head_.status / 100 == 1 || head_.status == 204 || head_.status == 304);
  if (no_body_ || bodiless_status) {
    framing_ = Framing::none;
  } else if (head_.chunked) {
    framing_ = Framing::chunked;
  } else if (has_transfer_encoding) {
    framing_ = Framing::until_eof;  // a response with a coding we do not frame
  } else if (length) {
    framing_ = *length > 0 ? Framing::length : Framing::none;
    remaining_ = *length;
  } else {
    framing_ = request ? Framing::none : Framing::until_eof;
  }
  if (framing_ == Framing::until_eof) head_.keep_alive = false;
  complete_ = framing_ == Framing::none;
  return true;
}

MessageParser::BodyProgress MessageParser::parse_body(std::string_view data) {
  BodyProgress progress;
  if (complete_ || data.empty()) return progress;
  switch (framing_) {
    case Framing::none:
      return progress;
    case Framing::length: {
      std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, data.size()));
      remaining_ -= take;
      progress.consumed = progress.relayed = take;
      progress.body_bytes = take;
      if (observer_) observer_->payload(data.substr(0, take));
      complete_ = remaining_ == 0;
      return progress;
    }
    case Framing::until_eof:
      progress.consumed = progress.relayed = data.size();
      progress.body_bytes = data.size();
      if (observer_) observer_->payload(data);
      return progress;
    case Framing::chunked:
      return parse_chunked(data);
  }
  return progress;
}

// chunked-body = *chunk last-chunk trailer-section CRLF (RFC 9112 §7.1),
// strictly: CRLF everywhere, hex sizes, no bare LF. Trailer lines are field
// lines by the rules of head fields, within what is left of the head's
// budget; they are never relayed (an upstream that expects "0\r\n\r\n" must
// not read them as a next request), so the bytes from the first trailer
// field on are consumed but not part of `relayed`.
MessageParser::BodyProgress MessageParser::parse_chunked(std::string_view data) {
  BodyProgress progress;
  std::size_t i = 0;
  // Where relaying stops in this call: nowhere yet, or at once when the
  // trailer section started in an earlier call.
  std::size_t relay_end = dropping_trailers_ ? 0 : std::string_view::npos;
  auto finish = [&] {
    progress.consumed = i;
    progress.relayed = std::min(i, relay_end);
    return progress;
  };
  auto fail = [&](const char* why) {
    local_error_ = why;
    progress.ok = false;
    return finish();
  };
  auto control_byte = [](unsigned char c) { return !is_field_value_byte(c); };
  while (i < data.size() && !complete_) {
    char c = data[i];
    auto byte = static_cast<unsigned char>(c);
    switch (chunk_state_) {
      case ChunkState::size: {
        int digit = hex_digit_value(c);
        if (digit >= 0) {
          if (++size_digits_ > kMaxChunkSizeDigits) return fail("chunk size too large");
          remaining_ = remaining_ * 16 + static_cast<unsigned>(digit);
          ++i;
        } else if (size_digits_ == 0) {
          return fail("chunk size is not hexadecimal");
        } else if (c == ';' || c == ' ' || c == '\t') {
          chunk_state_ = c == ';' ? ChunkState::extension : ChunkState::size_spaces;
          extension_bytes_ = 1;
          ++i;
        } else if (c == '\r') {
          chunk_state_ = ChunkState::size_lf;
          ++i;
        } else {
          return fail("invalid byte after a chunk size");
        }
        break;
      }
      case ChunkState::size_spaces:  // BWS before a chunk extension
        if (++extension_bytes_ > kMaxChunkExtensionBytes) return fail("chunk extension longer than 4 KiB");
        if (c == ';') {
          chunk_state_ = ChunkState::extension;
        } else if (c != ' ' && c != '\t') {
          return fail("whitespace after a chunk size not followed by an extension");
        }
        ++i;
        break;
      case ChunkState::extension:
        if (c == '\r') {
          chunk_state_ = ChunkState::size_lf;
        } else if (++extension_bytes_ > kMaxChunkExtensionBytes) {
          return fail("chunk extension longer than 4 KiB");
        } else if (control_byte(byte)) {
          return fail("control byte in a chunk extension");
        }
        ++i;
        break;
      case ChunkState::size_lf:
        if (c != '\n') return fail("chunk size line not ended by CRLF");
        ++i;
        size_digits_ = 0;
        extension_bytes_ = 0;
        chunk_state_ = remaining_ == 0 ? ChunkState::trailer_start : ChunkState::data;
        break;
      case ChunkState::data: {
        std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, data.size() - i));
        if (observer_ && take > 0) observer_->payload(data.substr(i, take));
        i += take;
        progress.body_bytes += take;
        remaining_ -= take;
        if (remaining_ == 0) chunk_state_ = ChunkState::data_cr;
        break;
      }
      case ChunkState::data_cr:
        if (c != '\r') return fail("chunk data not followed by CRLF");
        ++i;
        chunk_state_ = ChunkState::data_lf;
        break;
      case ChunkState::data_lf:
        if (c != '\n') return fail("chunk data not followed by CRLF");
        ++i;
        chunk_state_ = ChunkState::size;
        break;
      case ChunkState::trailer_start:
        if (c == '\r') {
          chunk_state_ = ChunkState::final_lf;
          ++i;
          break;
        }
        if (c == ' ' || c == '\t') return fail("obs-fold in the trailer section");
        if (!is_tchar(byte)) return fail("trailer line that is not a field (name \":\" value)");
        if (trailer_fields_left_ == 0) return fail("more trailer fields than the head limit leaves");
        --trailer_fields_left_;
        if (!dropping_trailers_) {
          dropping_trailers_ = true;
          relay_end = i;
        }
        chunk_state_ = ChunkState::trailer_name;
        break;  // the byte is read again as the first of the name
      case ChunkState::trailer_name:
      case ChunkState::trailer_value:
      case ChunkState::trailer_lf:
        if (trailer_bytes_left_ == 0) return fail("trailer section larger than the head limit leaves");
        --trailer_bytes_left_;
        if (chunk_state_ == ChunkState::trailer_name) {
          if (c == ':') {
            chunk_state_ = ChunkState::trailer_value;
          } else if (!is_tchar(byte)) {
            return fail("trailer field name with characters that are not allowed");
          }
        } else if (chunk_state_ == ChunkState::trailer_value) {
          if (c == '\r') {
            chunk_state_ = ChunkState::trailer_lf;
          } else if (control_byte(byte)) {
            return fail("control character in a trailer value");
          }
        } else {
          if (c != '\n') return fail("trailer line not ended by CRLF");
          chunk_state_ = ChunkState::trailer_start;
        }
        ++i;
        break;
      case ChunkState::final_lf:
        if (c != '\n') return fail("chunked body not ended by CRLF");
        ++i;
        complete_ = true;
        break;
    }
  }
  return finish();
}

bool MessageParser::finish_at_eof() {
  if (complete_) return true;
  if (framing_ == Framing::until_eof) {
    complete_ = true;
    return true;
  }
  return false;
}

bool MessageParser::body_until_eof() const {
  return headers_done_ && !complete_ && framing_ == Framing::until_eof;
}

std::string MessageParser::error() const {
  if (!local_error_.empty()) return local_error_;
  auto err = HTTP_PARSER_ERRNO(&parser_);
  return std::string(http_errno_name(err)) + ": " + http_errno_description(err);
}

}  // namespace regmeter
