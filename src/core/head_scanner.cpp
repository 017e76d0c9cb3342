#include "core/head_scanner.h"

#include <algorithm>

namespace regmeter {

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

// RFC 9112 §2.2 asks servers to skip at least one empty line before a
// request line (old clients sent a CRLF after a POST body); more than a few
// is not a client, and must not keep a connection waiting.
constexpr int kMaxEmptyLinesBeforeStart = 8;

}  // namespace

HeadScanner::Status HeadScanner::fail(const char* why) {
  status_ = Status::malformed;
  problem_ = why;
  return status_;
}

HeadScanner::Status HeadScanner::scan(std::string_view bytes) {
  const std::size_t n = bytes.size();
  std::size_t i = 0;
  // Bounded: every round moves past at least one byte, or returns.
  while (status_ == Status::need_more && i < n) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (after_cr_) {
      if (c != '\n') return fail("bare CR in the head");
      after_cr_ = false;
      ++i;
      ++scanned_;
      switch (where_) {  // a line ended
        case Where::before_start:
          if (++empty_lines_ > kMaxEmptyLinesBeforeStart) return fail("too many empty lines before the start line");
          break;
        case Where::start_line: {
          // method SP target SP HTTP/d.d: the version is the last 8 bytes.
          auto byte = [this](int k) { return static_cast<char>(tail_ >> (8 * (7 - k))); };
          bool version = spaces_ >= 2 && since_space_ == 8 && byte(0) == 'H' && byte(1) == 'T' && byte(2) == 'T' &&
                         byte(3) == 'P' && byte(4) == '/' && byte(5) >= '0' && byte(5) <= '9' && byte(6) == '.' &&
                         byte(7) >= '0' && byte(7) <= '9';
          if (request_ && !version) return fail("request line without an HTTP version (HTTP/0.9?)");
          where_ = Where::line_start;
          break;
        }
        case Where::line_start:  // an empty line after the start line: the end
          ++lines_;
          status_ = Status::complete;
          break;
        case Where::in_line:
          ++lines_;
          where_ = Where::line_start;
          break;
      }
      continue;
    }
    if (c == '\r') {
      after_cr_ = true;
      ++i;
      ++scanned_;
      continue;
    }
    if (c == '\n') return fail("bare LF in the head");
    if (c == '\0') return fail("NUL byte in the head");
    switch (where_) {
      case Where::before_start:
        where_ = Where::start_line;
        [[fallthrough]];
      case Where::start_line: {
        if (c == ' ') {
          ++spaces_;
          since_space_ = 0;
          tail_ = (tail_ << 8) | c;
          ++i;
          ++scanned_;
          break;
        }
        // A run of bytes up to the next SP, CR, LF or NUL (a long target):
        // only its last 8 bytes can be the version.
        std::size_t next = i + 1;
        while (next < n && static_cast<unsigned char>(bytes[next]) > '\r' && bytes[next] != ' ') ++next;
        for (std::size_t k = next - std::min<std::size_t>(next - i, 8); k < next; ++k)
          tail_ = (tail_ << 8) | static_cast<unsigned char>(bytes[k]);
        since_space_ += next - i;
        scanned_ += next - i;
        i = next;
        break;
      }
      case Where::line_start:
        if (c == ' ' || c == '\t') return fail("obs-fold (a header line starting with whitespace)");
        where_ = Where::in_line;
        [[fallthrough]];
      case Where::in_line: {
        // Field lines: only CR, LF and NUL matter here, all below 0x0e, so
        // one comparison passes every other byte.
        std::size_t next = i + 1;
        while (next < n && static_cast<unsigned char>(bytes[next]) > '\r') ++next;
        scanned_ += next - i;
        i = next;
        break;
      }
    }
  }
  return status_;
}

}  // namespace regmeter
