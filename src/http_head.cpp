#include "regmeter/http_head.h"

#include <cstring>

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

std::size_t find_head_end(std::string_view data) {
  auto at = data.find("\r\n\r\n");
  return at == std::string_view::npos ? 0 : at + 4;
}

MessageParser::MessageParser(Kind kind) : kind_(kind) {
  http_parser_settings_init(&settings_);
  settings_.on_url = &on_url;
  settings_.on_status = &on_status;
  settings_.on_header_field = &on_header_field;
  settings_.on_header_value = &on_header_value;
  settings_.on_headers_complete = &on_headers_complete;
  settings_.on_body = &on_body;
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
  body_seen_ = 0;
  local_error_.clear();
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
  head.chunked = (p->flags & F_CHUNKED) != 0;
  if (s->kind_ == Kind::request) {
    head.method = http_method_str(static_cast<http_method>(p->method));
  } else {
    head.status = static_cast<int>(p->status_code);
  }
  // http-parser tracks the length it is counting down; keep our own copy of
  // the announced one for the metrics and for HEAD responses.
  if (const std::string* length = head.find("Content-Length")) {
    std::uint64_t value = 0;
    bool digits = !length->empty();
    for (char c : *length) {
      if (c < '0' || c > '9') { digits = false; break; }
      value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (digits) head.content_length = value;
  }
  s->headers_done_ = true;
  // 1: "no body follows" (a response to HEAD).
  return s->no_body_ ? 1 : 0;
}

int MessageParser::on_body(http_parser* p, const char*, std::size_t len) {
  self(p)->body_seen_ += len;
  return 0;
}

int MessageParser::on_message_complete(http_parser* p) {
  self(p)->complete_ = true;
  // Stop here: whatever follows belongs to the next message.
  http_parser_pause(p, 1);
  return 0;
}

bool MessageParser::parse_head(std::string_view bytes) {
  std::size_t parsed = http_parser_execute(&parser_, &settings_, bytes.data(), bytes.size());
  auto err = HTTP_PARSER_ERRNO(&parser_);
  if (err != HPE_OK && err != HPE_PAUSED) return false;
  if (!headers_done_ || (err == HPE_OK && parsed != bytes.size())) {
    local_error_ = "incomplete head";
    return false;
  }
  for (const auto& field : head_.headers) {
    // http-parser tolerates some bytes that make smuggling possible.
    for (char c : field.value)
      if (c == '\0' || c == '\r' || c == '\n') {
        local_error_ = "control character in a header value";
        return false;
      }
  }
  return true;
}

MessageParser::BodyProgress MessageParser::parse_body(std::string_view data) {
  BodyProgress progress;
  if (complete_ || data.empty()) return progress;
  std::uint64_t before = body_seen_;
  progress.consumed = http_parser_execute(&parser_, &settings_, data.data(), data.size());
  auto err = HTTP_PARSER_ERRNO(&parser_);
  progress.ok = err == HPE_OK || (err == HPE_PAUSED && complete_);
  progress.body_bytes = body_seen_ - before;
  return progress;
}

bool MessageParser::finish_at_eof() {
  if (complete_) return true;
  if (!headers_done_) return false;
  http_parser_execute(&parser_, &settings_, nullptr, 0);
  return complete_;
}

bool MessageParser::body_until_eof() const {
  // RFC 9112 §6.3: a response with neither Content-Length nor chunked
  // framing (and a status that allows a body) ends when the connection does.
  // Once headers are parsed, http-parser has already completed the bodiless
  // cases (HEAD, 1xx, 204, 304), so `!complete_` covers them.
  return kind_ == Kind::response && headers_done_ && !complete_ && !head_.chunked && !head_.content_length;
}

std::string MessageParser::error() const {
  if (!local_error_.empty()) return local_error_;
  auto err = HTTP_PARSER_ERRNO(&parser_);
  return std::string(http_errno_name(err)) + ": " + http_errno_description(err);
}

}  // namespace regmeter
