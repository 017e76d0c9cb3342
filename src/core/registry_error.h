// The OCI error code of a registry's 4xx/5xx answer: the `code` of the first
// entry of its JSON `errors` array ({"errors":[{"code":"MANIFEST_UNKNOWN",
// "message":...}]}), read from the body as it streams to the client, never
// holding it back and never looking past the first kWindowBytes. Pure: no I/O.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace regmeter {

// The closed set of `error` label values: the OCI distribution spec's error
// table, the codes CNCF distribution adds (2.8's registry/api/errcode and
// registry/api/v2/errors.go; RANGE_INVALID since 3.0), `other` for any other
// code, `none` for no parseable error body.
enum class RegistryError : std::uint8_t {
  none,
  other,
  // OCI distribution spec v1.1, "Error Codes"
  blob_unknown,
  blob_upload_invalid,
  blob_upload_unknown,
  digest_invalid,
  manifest_blob_unknown,
  manifest_invalid,
  manifest_unknown,
  name_invalid,
  name_unknown,
  size_invalid,
  unauthorized,
  denied,
  unsupported,
  toomanyrequests,
  // CNCF distribution's additions
  tag_invalid,
  manifest_unverified,
  pagination_number_invalid,
  range_invalid,
  unavailable,
  unknown,  // distribution's catch-all for internal errors (500)
};
inline constexpr std::size_t kRegistryErrorCount = 22;

// The label value: the code as registries spell it ("MANIFEST_UNKNOWN"), or
// "other" / "none".
std::string_view registry_error_name(RegistryError error);

// Maps a `code` string onto the closed set (ASCII case-insensitive; anything
// not in the table is `other`).
RegistryError registry_error_from_code(std::string_view code);

// Whether a response's body is worth feeding to a RegistryErrorReader: an
// error status, a body (not HEAD), and bytes we can read as they are (no
// Content-Encoding other than identity: a gzip body would be `none` anyway).
bool error_body_readable(int status, bool head_request, std::string_view content_encoding);

// Fed the payload bytes of one response body (chunked framing already
// removed) in chunks of any size, split anywhere. Keeps a copy of the first
// kWindowBytes only (a fixed buffer: no allocation) and parses it once, in
// finish(), with RapidJSON's SAX reader in situ.
class RegistryErrorReader {
 public:
  static constexpr std::size_t kWindowBytes = 4096;

  void feed(std::string_view chunk);
  // False once the window is full: further feeding is a no-op.
  bool wants_more() const { return !finished_ && length_ < kWindowBytes; }

  // The body ended normally. A body that fits the window must be one whole
  // JSON document; one longer than the window is judged on its first
  // kWindowBytes, which must be well-formed JSON as far as they go. A body
  // that was cut off (the upstream died) should not be finished: its error
  // is `none`. Later calls return the same answer.
  RegistryError finish();

 private:
  RegistryError parse_window();  // parses in situ: changes the window


  std::array<char, kWindowBytes + 1> window_;  // + the terminator RapidJSON's in-situ stream needs
  std::size_t length_ = 0;
  bool overflowed_ = false;  // the body went on past the window
  bool finished_ = false;
  RegistryError result_ = RegistryError::none;
};

}  // namespace regmeter
