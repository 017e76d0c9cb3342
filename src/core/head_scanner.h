// Finding the end of a request or response head while its bytes arrive,
// and refusing early what can never become a valid head. Pure byte rules,
// no parsing of fields: MessageParser (core/http_head.h) does that once the
// head is complete, and applies these same rules to it first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace regmeter {

// Whether `prefix` (the first bytes of a request, head not complete yet)
// can still become an HTTP/1.x request line: optional empty lines, then a
// method token. A TLS ClientHello sent to the plain port fails at once, so
// the client hears "no" now instead of after --header-timeout.
bool plausible_request_start(std::string_view prefix);

// Finds the end of a head ("\r\n\r\n") in data; returns the head's length
// including that terminator, or 0 when it is not there yet.
std::size_t find_head_end(std::string_view data);

// Reads a head as its bytes arrive, each byte once (a head trickling in a
// byte per read costs no rescans), and says as soon as it can where the head
// ends or that it can never become a valid one. The line rules of every head:
// lines end in CRLF (a bare LF or CR could end the head earlier for one
// reader than for another), no NUL, no obs-fold, at most a few empty lines
// before the start line; a request line ends in an HTTP-version (an HTTP/0.9
// "GET /" would otherwise wait for a blank line that never comes).
// parse_head applies the same rules to a complete head.
class HeadScanner {
 public:
  enum class Status { need_more, complete, malformed };
  explicit HeadScanner(bool request) : request_(request) {}

  void reset() { *this = HeadScanner(request_); }
  // Scans `bytes`, which follow those scanned so far; stops at the end of
  // the head (bytes after it are not looked at).
  Status scan(std::string_view bytes);
  Status status() const { return status_; }
  // Bytes scanned so far; once complete, the length of the head.
  std::size_t scanned() const { return scanned_; }
  // Why the head is malformed.
  const char* problem() const { return problem_; }
  // Lines ended so far after the start line (field lines and the blank one).
  std::size_t lines() const { return lines_; }

 private:
  enum class Where { before_start, start_line, line_start, in_line };
  Status fail(const char* why);

  bool request_;
  Status status_ = Status::need_more;
  Where where_ = Where::before_start;
  bool after_cr_ = false;     // the previous byte was CR: only LF may follow
  int empty_lines_ = 0;       // before the start line
  int spaces_ = 0;            // in the start line
  std::size_t since_space_ = 0;  // start-line bytes after its last SP
  std::uint64_t tail_ = 0;    // the last 8 bytes of the start line
  std::size_t scanned_ = 0;
  std::size_t lines_ = 0;
  const char* problem_ = "";
};

}  // namespace regmeter
