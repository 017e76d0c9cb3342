#include "regmeter/http_head.h"

#include <algorithm>
#include <cstring>
#include <optional>

namespace regmeter {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y + 32);
    if (x != y) return false;
  }
  return true;
}

const std::string* MessageHead::find(std::string_view name) const {
  for (const auto& field : headers)
    if (iequals(field.name, name)) return &field.value;
  return nullptr;
}

bool plausible_request_start(std::string_view prefix) {
  std::size_t i = 0;
  while (i < prefix.size() && (prefix[i] == '\r' || prefix[i] == '\n')) ++i;
  constexpr std::size_t kLongestMethod = 32;
  std::size_t start = i;
  for (; i < prefix.size(); ++i) {
    char c = prefix[i];
    if (c == ' ') return i > start;
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '-' || c == '_')) return false;
    if (i - start >= kLongestMethod) return false;
  }
  return true;  // too short to tell yet
}

std::size_t find_head_end(std::string_view data) {
  auto at = data.find("\r\n\r\n");
  return at == std::string_view::npos ? 0 : at + 4;
}

namespace {

// RFC 9110 token characters (header names).
bool is_tchar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != 0;
}

std::string_view trim_ows(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

constexpr std::size_t kMaxTrailerBytes = 64 * 1024;
constexpr int kMaxChunkSizeDigits = 15;  // < 2^60: no overflow

}  // namespace

MessageParser::MessageParser(Kind kind) : kind_(kind) {
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
  version_unsupported_ = false;
  framing_ = Framing::none;
  remaining_ = 0;
  chunk_state_ = ChunkState::size;
  size_digits_ = 0;
  trailer_bytes_ = 0;
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

// Checks http-parser is lenient about, on the raw head: every line ends in
// CRLF (a bare LF or CR could end the head earlier for one reader than for
// another), no NUL, no obs-fold continuation lines.
bool MessageParser::check_raw_head(std::string_view bytes) {
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    char c = bytes[i];
    // NUL, LF and CR are all below 0x0e: one comparison passes every other
    // byte (this loop runs over every head, per request).
    if (static_cast<unsigned char>(c) > '\r') continue;
    if (c == '\0') {
      local_error_ = "NUL byte in the head";
      return false;
    }
    if (c == '\n' && (i == 0 || bytes[i - 1] != '\r')) {
      local_error_ = "bare LF in the head";
      return false;
    }
    if (c == '\r' && (i + 1 >= bytes.size() || bytes[i + 1] != '\n')) {
      local_error_ = "bare CR in the head";
      return false;
    }
    if (c == '\n' && i + 1 < bytes.size() && (bytes[i + 1] == ' ' || bytes[i + 1] == '\t')) {
      local_error_ = "obs-fold (a header line starting with whitespace)";
      return false;
    }
  }
  return true;
}

bool MessageParser::parse_head(std::string_view bytes) {
  if (!check_raw_head(bytes)) return false;
  std::size_t parsed = http_parser_execute(&parser_, &settings_, bytes.data(), bytes.size());
  auto err = HTTP_PARSER_ERRNO(&parser_);
  if (err != HPE_OK && err != HPE_PAUSED) return false;
  // The head must end exactly where the caller's head ends: no second
  // message or body bytes hiding inside it.
  if (!headers_done_ || parsed != bytes.size()) {
    local_error_ = "the head does not end where its blank line is";
    return false;
  }
  if (head_.http_major != 1 || head_.http_minor > 1) {
    version_unsupported_ = true;
    local_error_ = "HTTP version not supported (only HTTP/1.0 and HTTP/1.1)";
    return false;
  }
  if (kind_ == Kind::request) {
    for (unsigned char c : head_.target)
      if (c <= 0x20 || c >= 0x7f) {
        local_error_ = "control or non-ASCII byte in the request target";
        return false;
      }
  }
  for (auto& field : head_.headers) {
    if (field.name.empty() ||
        !std::all_of(field.name.begin(), field.name.end(), [](char c) { return is_tchar(static_cast<unsigned char>(c)); })) {
      local_error_ = "header name with characters that are not allowed";
      return false;
    }
    // Field values: visible bytes, SP, HTAB and obs-text only (RFC 9110
    // §5.5). http-parser skips this check for a value's first byte.
    for (char c : field.value) {
      auto byte = static_cast<unsigned char>(c);
      if ((byte < 0x20 && byte != '\t') || byte == 0x7f) {
        local_error_ = "control character in a header value";
        return false;
      }
    }
    std::string_view trimmed = trim_ows(field.value);
    if (trimmed.size() != field.value.size()) field.value = std::string(trimmed);
  }
  return decide_framing();
}

// RFC 9112 §6.3: how the body ends.
bool MessageParser::decide_framing() {
  // Transfer-Encoding: the codings of every such field, in order; chunked
  // counts only as the final one, once.
  bool has_transfer_encoding = false;
  std::string last_coding;
  int chunked_count = 0;
  std::optional<std::uint64_t> length;
  int length_fields = 0;
  for (const auto& field : head_.headers) {
    if (iequals(field.name, "Transfer-Encoding")) {
      has_transfer_encoding = true;
      std::string_view list = field.value;
      while (true) {
        auto comma = list.find(',');
        std::string_view coding = trim_ows(list.substr(0, comma));
        if (!coding.empty()) {
          last_coding = std::string(coding);
          if (iequals(coding, "chunked")) ++chunked_count;
        }
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
      }
    } else if (iequals(field.name, "Content-Length")) {
      ++length_fields;
      const std::string& text = field.value;
      if (text.empty() || text.size() > 19 || !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        local_error_ = "invalid Content-Length";
        return false;
      }
      length = std::stoull(text);
    }
  }
  if (length_fields > 1) {
    local_error_ = "more than one Content-Length";
    return false;
  }
  head_.content_length = length;
  head_.chunked = has_transfer_encoding && chunked_count == 1 && iequals(last_coding, "chunked");
  if (has_transfer_encoding && length) {
    local_error_ = "both Transfer-Encoding and Content-Length";
    return false;
  }
  bool bodiless_status = kind_ == Kind::response &&
                         (head_.status / 100 == 1 || head_.status == 204 || head_.status == 304);
  if (has_transfer_encoding && !head_.chunked && kind_ == Kind::request) {
    local_error_ = "Transfer-Encoding whose final coding is not chunked";
    return false;
  }
  if (has_transfer_encoding && chunked_count > (head_.chunked ? 1 : 0) ) {
    local_error_ = "chunked applied more than once";
    return false;
  }
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
    framing_ = kind_ == Kind::request ? Framing::none : Framing::until_eof;
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
      progress.consumed = take;
      progress.body_bytes = take;
      complete_ = remaining_ == 0;
      return progress;
    }
    case Framing::until_eof:
      progress.consumed = data.size();
      progress.body_bytes = data.size();
      return progress;
    case Framing::chunked:
      return parse_chunked(data);
  }
  return progress;
}

// chunked-body = *chunk last-chunk trailer-section CRLF (RFC 9112 §7.1),
// strictly: CRLF everywhere, hex sizes, no bare LF.
MessageParser::BodyProgress MessageParser::parse_chunked(std::string_view data) {
  BodyProgress progress;
  std::size_t i = 0;
  auto fail = [&](const char* why) {
    local_error_ = why;
    progress.ok = false;
    progress.consumed = i;
    return progress;
  };
  while (i < data.size() && !complete_) {
    char c = data[i];
    switch (chunk_state_) {
      case ChunkState::size: {
        int digit = hex_value(c);
        if (digit >= 0) {
          if (++size_digits_ > kMaxChunkSizeDigits) return fail("chunk size too large");
          remaining_ = remaining_ * 16 + static_cast<unsigned>(digit);
          ++i;
        } else if (size_digits_ == 0) {
          return fail("chunk size is not hexadecimal");
        } else if (c == ';') {
          chunk_state_ = ChunkState::extension;
          ++i;
        } else if (c == ' ' || c == '\t') {
          chunk_state_ = ChunkState::size_spaces;
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
        if (c == ' ' || c == '\t') {
          ++i;
        } else if (c == ';') {
          chunk_state_ = ChunkState::extension;
          ++i;
        } else {
          return fail("whitespace after a chunk size not followed by an extension");
        }
        break;
      case ChunkState::extension:
        if (c == '\r') {
          chunk_state_ = ChunkState::size_lf;
        } else if (c == '\n' || c == '\0') {
          return fail("control byte in a chunk extension");
        }
        ++i;
        break;
      case ChunkState::size_lf:
        if (c != '\n') return fail("chunk size line not ended by CRLF");
        ++i;
        size_digits_ = 0;
        chunk_state_ = remaining_ == 0 ? ChunkState::trailer_start : ChunkState::data;
        break;
      case ChunkState::data: {
        std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, data.size() - i));
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
        } else if (c == ' ' || c == '\t' || c == '\n') {
          return fail("malformed trailer section");
        } else {
          chunk_state_ = ChunkState::trailer;
        }
        ++i;
        break;
      case ChunkState::trailer:
        if (++trailer_bytes_ > kMaxTrailerBytes) return fail("trailer section too large");
        if (c == '\r') {
          chunk_state_ = ChunkState::trailer_lf;
        } else if (c == '\n' || c == '\0') {
          return fail("control byte in a trailer");
        }
        ++i;
        break;
      case ChunkState::trailer_lf:
        if (c != '\n') return fail("trailer line not ended by CRLF");
        ++i;
        chunk_state_ = ChunkState::trailer_start;
        break;
      case ChunkState::final_lf:
        if (c != '\n') return fail("chunked body not ended by CRLF");
        ++i;
        complete_ = true;
        break;
    }
  }
  progress.consumed = i;
  return progress;
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
