// libFuzzer target: the upload-session token carried in upload URLs
// (`_rm=` query parameter): encode/decode, take_session_token,
// with_session_token, session_step.
//
// The input is used three ways: as a request target (take_session_token), as
// a Location value (with_session_token then take_session_token), and as token
// text (decode_session_token). Invariants:
//  * decode(encode(t)) == t for every token with a positive start;
//  * whatever decodes re-encodes to text that decodes to the same token;
//  * take_session_token leaves no `_rm=` parameter, keeps the path and every
//    other non-empty parameter in order, and changes nothing (returning no
//    token) when there is no `_rm=` parameter;
//  * a token added to a Location (no fragment, no `_rm=` already) is found
//    again by take_session_token, which gives back the Location (empty query
//    parameters aside);
//  * session_step: no session for non-upload handlers, nor for 401/0.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_common.h"
#include "core/route.h"
#include "core/upload_session.h"

using regmeter::SessionToken;

namespace {

bool is_session_param(std::string_view p) { return p.size() > 3 && p.substr(0, 4) == "_rm="; }

struct Split {
  std::string path;
  bool has_query = false;
  std::vector<std::string> params;  // all, empty ones included
};

Split split(std::string_view target) {
  Split s;
  auto q = target.find('?');
  s.path = std::string(target.substr(0, q));
  if (q == std::string_view::npos) return s;
  s.has_query = true;
  std::string_view rest = target.substr(q + 1);
  while (true) {
    auto end = rest.find('&');
    s.params.emplace_back(rest.substr(0, end));
    if (end == std::string_view::npos) break;
    rest.remove_prefix(end + 1);
  }
  return s;
}

std::vector<std::string> kept_params(const Split& s) {
  std::vector<std::string> out;
  for (const auto& p : s.params)
    if (!p.empty() && !is_session_param(p)) out.push_back(p);
  return out;
}

bool same_token(const SessionToken& a, const SessionToken& b) {
  return a.started_unix_ns == b.started_unix_ns && a.bytes == b.bytes;
}

void check_take(std::string_view original) {
  std::string target(original);
  Split before = split(original);
  bool present = false;
  for (const auto& p : before.params) present |= is_session_param(p);
  auto token = regmeter::take_session_token(target);
  if (!present) {
    FUZZ_CHECK(!token && target == original, "no _rm parameter, yet [%s] became [%s]", fuzz::shown(original).c_str(),
               fuzz::shown(target).c_str());
    return;
  }
  Split after = split(target);
  FUZZ_CHECK(after.path == before.path, "path changed: [%s] -> [%s]", fuzz::shown(original).c_str(),
             fuzz::shown(target).c_str());
  for (const auto& p : after.params) FUZZ_CHECK(!is_session_param(p), "_rm left in [%s]", fuzz::shown(target).c_str());
  FUZZ_CHECK(kept_params(after) == kept_params(before), "other parameters changed: [%s] -> [%s]",
             fuzz::shown(original).c_str(), fuzz::shown(target).c_str());
  if (token) FUZZ_CHECK(token->started_unix_ns > 0, "token with a start <= 0");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 64 * 1024) return 0;
  std::string_view whole(reinterpret_cast<const char*>(data), size);

  // 1. The whole input as a target, and as token text.
  check_take(whole);
  if (auto t = regmeter::decode_session_token(whole)) {
    FUZZ_CHECK(t->started_unix_ns > 0, "decoded a start <= 0 from [%s]", fuzz::shown(whole).c_str());
    std::string again = regmeter::encode_session_token(*t);
    auto t2 = regmeter::decode_session_token(again);
    FUZZ_CHECK(t2 && same_token(*t, *t2), "re-encoded token [%s] does not decode the same", again.c_str());
  }

  // 2. Structured: a token and a Location.
  FuzzedDataProvider fdp(data, size);
  SessionToken token{fdp.ConsumeIntegralInRange<std::int64_t>(1, INT64_MAX), fdp.ConsumeIntegral<std::uint64_t>()};
  int status = fdp.ConsumeIntegralInRange<int>(0, 999);
  auto handler = static_cast<regmeter::Handler>(fdp.ConsumeIntegralInRange<int>(0, regmeter::kHandlerCount - 1));
  auto method = static_cast<regmeter::Method>(fdp.ConsumeIntegralInRange<int>(0, regmeter::kMethodCount - 1));
  std::string location = fdp.ConsumeRemainingBytesAsString();

  std::string encoded = regmeter::encode_session_token(token);
  auto decoded = regmeter::decode_session_token(encoded);
  FUZZ_CHECK(decoded && same_token(*decoded, token), "encode/decode round trip failed for [%s]", encoded.c_str());
  for (char c : encoded)
    FUZZ_CHECK((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == '.', "token text [%s] is not URL-safe",
               encoded.c_str());

  std::string with = regmeter::with_session_token(location, token);
  check_take(with);
  Split loc = split(location);
  bool had_param = false;
  for (const auto& p : loc.params) had_param |= is_session_param(p);
  if (location.find('#') == std::string::npos && !had_param) {
    std::string target = with;
    auto found = regmeter::take_session_token(target);
    FUZZ_CHECK(found && same_token(*found, token), "token added to [%s] not found again in [%s]",
               fuzz::shown(location).c_str(), fuzz::shown(with).c_str());
    Split back = split(target);
    FUZZ_CHECK(back.path == loc.path && kept_params(back) == kept_params(loc), "[%s] came back as [%s]",
               fuzz::shown(location).c_str(), fuzz::shown(target).c_str());
  }

  // 3. session_step for every shape: bounded answers, no session outside uploads.
  regmeter::SessionStep step = regmeter::session_step(handler, method, location, status);
  if (handler != regmeter::Handler::blob_upload && handler != regmeter::Handler::blob_upload_chunk)
    FUZZ_CHECK(step.kind == regmeter::SessionStep::Kind::none, "a session step for handler %d", (int)handler);
  if (status == 401 || status == 0) FUZZ_CHECK(step.kind == regmeter::SessionStep::Kind::none, "a step for %d", status);
  FUZZ_CHECK(static_cast<std::size_t>(step.outcome) < regmeter::kSessionOutcomeCount, "outcome out of range");
  return 0;
}
