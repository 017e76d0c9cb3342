// Route classification: which registry v2 (OCI distribution) endpoint a
// request is aimed at. Pure and allocation-light; no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace regmeter {

// The `handler` label values, as CNCF distribution names its routes
// (route names with '-' turned into '_'), plus `referrers` and `other`.
enum class Handler : std::uint8_t {
  base,
  catalog,
  tags,
  manifest,
  blob,
  blob_upload,
  blob_upload_chunk,
  referrers,
  other,
};
inline constexpr std::size_t kHandlerCount = 9;

std::string_view handler_name(Handler handler);

// HTTP methods as they appear in the `method` label (lower-case).
enum class Method : std::uint8_t { get, head, post, put, patch, delete_, options, other };
inline constexpr std::size_t kMethodCount = 8;

std::string_view method_name(Method method);        // "get", "head", ..., "other"
Method method_from_string(std::string_view token);  // case-sensitive, as HTTP says

struct Route {
  Handler handler = Handler::other;
  std::string repository;  // the <name>, percent-decoded; empty when the route has none
  std::string reference;   // tag, digest or upload id; empty when the route has none
};

// Classifies a request target in origin form ("/v2/a/b/manifests/latest?x=y").
// Names contain '/', so the route suffix is matched from the right. Anything
// that is not a valid v2 route (bad name, bad digest, not under /v2) is
// Handler::other. Never throws for any input.
Route classify(Method method, std::string_view target);

// Why a request target must be refused (400 NAME_INVALID) before anything
// is forwarded, or empty when it is fine: a /v2/ path (percent-decoded; also
// one that becomes /v2/... once its dot-segments are resolved) with a "." or
// ".." segment (%2e counts as '.') or an encoded '/' (%2F). No OCI name or
// reference holds one, and the servers on the way to a registry read such
// paths differently (one resolves "a/../b" to "b", one decodes "%2F" into a
// separator, distribution redirects), so the repository regmeter counts
// could differ from the one the registry serves. Targets that are not /v2/
// paths are left alone. classify() is unchanged by this: it is a separate
// question, asked once per request by the connection.
std::string_view ambiguous_path_reason(std::string_view target);

}  // namespace regmeter
