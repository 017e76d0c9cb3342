#include "core/registry_error.h"

#include <rapidjson/reader.h>

#include <algorithm>
#include <cstring>

#include "core/ascii.h"

namespace regmeter {

namespace {

struct CodeName {
  RegistryError error;
  std::string_view name;
};

// Indexed by the enum's value.
constexpr std::array<CodeName, kRegistryErrorCount> kCodes = {{
    {RegistryError::none, "none"},
    {RegistryError::other, "other"},
    {RegistryError::blob_unknown, "BLOB_UNKNOWN"},
    {RegistryError::blob_upload_invalid, "BLOB_UPLOAD_INVALID"},
    {RegistryError::blob_upload_unknown, "BLOB_UPLOAD_UNKNOWN"},
    {RegistryError::digest_invalid, "DIGEST_INVALID"},
    {RegistryError::manifest_blob_unknown, "MANIFEST_BLOB_UNKNOWN"},
    {RegistryError::manifest_invalid, "MANIFEST_INVALID"},
    {RegistryError::manifest_unknown, "MANIFEST_UNKNOWN"},
    {RegistryError::name_invalid, "NAME_INVALID"},
    {RegistryError::name_unknown, "NAME_UNKNOWN"},
    {RegistryError::size_invalid, "SIZE_INVALID"},
    {RegistryError::unauthorized, "UNAUTHORIZED"},
    {RegistryError::denied, "DENIED"},
    {RegistryError::unsupported, "UNSUPPORTED"},
    {RegistryError::toomanyrequests, "TOOMANYREQUESTS"},
    {RegistryError::tag_invalid, "TAG_INVALID"},
    {RegistryError::manifest_unverified, "MANIFEST_UNVERIFIED"},
    {RegistryError::pagination_number_invalid, "PAGINATION_NUMBER_INVALID"},
    {RegistryError::range_invalid, "RANGE_INVALID"},
    {RegistryError::unavailable, "UNAVAILABLE"},
    {RegistryError::unknown, "UNKNOWN"},
}};
static_assert(kCodes.back().error == RegistryError::unknown);

constexpr std::size_t kFirstCode = 2;  // kCodes[0], [1] are our own values, not codes

// Deeper than any error body needs; bounds the parser's recursion.
constexpr unsigned kMaxDepth = 16;

// How far before the end of a cut window RapidJSON may report the error the
// cut caused: it reports a bad escape at its backslash, and the longest one
// is a surrogate pair, \uD83D\uDE00, of which a cut leaves at most 11 bytes.
constexpr std::size_t kCutSlack = 11;

// SAX handler: follows root → "errors" → [0] → "code" and remembers that
// string, mapped at once (in-situ strings live only as long as the window).
// Everything else is walked past, with the depth bounded.
class FirstErrorCode : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, FirstErrorCode> {
 public:
  bool found() const { return found_; }
  RegistryError error() const { return error_; }

  bool Default() {  // null, booleans, numbers
    value_begins();
    return true;
  }
  bool String(const char* text, rapidjson::SizeType length, bool) {
    bool is_code = expecting_ == Expecting::code;
    value_begins();
    if (is_code) {
      found_ = true;
      error_ = registry_error_from_code(std::string_view(text, length));
    }
    return true;
  }
  bool Key(const char* text, rapidjson::SizeType length, bool) {
    std::string_view key(text, length);
    expecting_ = Expecting::nothing;
    if (depth_ == 1 && key == "errors" && !errors_seen_) {
      errors_seen_ = true;
      expecting_ = Expecting::errors;
    } else if (in_first_entry() && key == "code" && !code_seen_) {
      code_seen_ = true;  // a duplicate "code" does not override the first
      expecting_ = Expecting::code;
    }
    return true;
  }
  bool StartObject() { return open(false); }
  bool StartArray() { return open(true); }
  bool EndObject(rapidjson::SizeType) { return close(); }
  bool EndArray(rapidjson::SizeType) { return close(); }

 private:
  enum class Expecting { nothing, errors, code };

  bool in_errors() const { return errors_depth_ != 0 && depth_ == errors_depth_; }
  bool in_first_entry() const { return first_entry_depth_ != 0 && depth_ == first_entry_depth_; }

  // Called for every value, before descending into it.
  void value_begins() {
    if (in_errors()) ++errors_entries_;
    expecting_ = Expecting::nothing;
  }

  bool open(bool array) {
    bool opens_errors = expecting_ == Expecting::errors && array;
    bool opens_first_entry = in_errors() && errors_entries_ == 0 && !array;
    value_begins();
    if (++depth_ > kMaxDepth) return false;
    if (opens_errors) errors_depth_ = depth_;
    if (opens_first_entry) first_entry_depth_ = depth_;
    return true;
  }

  bool close() {
    if (in_first_entry()) first_entry_depth_ = 0;
    if (in_errors()) errors_depth_ = 0;
    --depth_;
    return true;
  }

  unsigned depth_ = 0;              // 1 inside the root object
  unsigned errors_depth_ = 0;       // depth inside the "errors" array; 0 when not in it
  unsigned first_entry_depth_ = 0;  // depth inside errors[0] when it is an object; 0 otherwise
  std::size_t errors_entries_ = 0;
  bool errors_seen_ = false;
  bool code_seen_ = false;
  bool found_ = false;
  Expecting expecting_ = Expecting::nothing;
  RegistryError error_ = RegistryError::none;
};

}  // namespace

std::string_view registry_error_name(RegistryError error) {
  auto index = static_cast<std::size_t>(error);
  return index < kCodes.size() ? kCodes[index].name : "none";
}

RegistryError registry_error_from_code(std::string_view code) {
  for (std::size_t i = kFirstCode; i < kCodes.size(); ++i)
    if (ascii_iequals(code, kCodes[i].name)) return kCodes[i].error;
  return RegistryError::other;
}

bool error_body_readable(int status, bool head_request, std::string_view content_encoding) {
  if (status < 400 || status > 599 || head_request) return false;
  content_encoding = ascii_trim(content_encoding);
  return content_encoding.empty() || ascii_iequals(content_encoding, "identity");
}

void RegistryErrorReader::feed(std::string_view chunk) {
  if (finished_) return;
  std::size_t room = kWindowBytes - length_;
  if (chunk.size() > room) overflowed_ = true;
  std::size_t taken = std::min(room, chunk.size());
  std::memcpy(window_.data() + length_, chunk.data(), taken);
  length_ += taken;
}

RegistryError RegistryErrorReader::finish() {
  if (finished_) return result_;
  finished_ = true;
  result_ = parse_window();
  return result_;
}

RegistryError RegistryErrorReader::parse_window() {
  if (length_ == 0) return RegistryError::none;
  window_[length_] = '\0';
  FirstErrorCode handler;
  rapidjson::Reader reader;
  rapidjson::InsituStringStream stream(window_.data());
  rapidjson::ParseResult result = reader.Parse<rapidjson::kParseInsituFlag>(stream, handler);
  if (!handler.found()) return RegistryError::none;
  // RapidJSON stops at a NUL byte as at the end: the document must reach the real end.
  if (result) return stream.Tell() == length_ ? handler.error() : RegistryError::none;
  // Not one whole document. Past the window we cannot know: accept the code
  // when the parse failed only because the window ended.
  bool ran_out = overflowed_ && result.Code() != rapidjson::kParseErrorTermination &&
                 result.Offset() + kCutSlack >= length_;
  return ran_out ? handler.error() : RegistryError::none;
}

}  // namespace regmeter
