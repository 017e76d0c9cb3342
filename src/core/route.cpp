// Route classification, modelled on what CNCF distribution 2.8 actually
// counts in registry_http_requests_total.
//
// Distribution registers its routes on a gorilla/mux router with no method
// matchers, so it picks the route from the PATH alone; a wrong method is
// answered 405 by the route's own (instrumented) handler and is counted under
// that route. We therefore ignore the method too.
//
// Things distribution 2.8 does that shape this file (each was checked against
// a running docker-registry 2.8.2 by watching its /metrics):
//  * Go's net/http parses the target with url.ParseRequestURI: a control byte
//    anywhere or a bad %-escape in the path is a 400 before routing, and '#'
//    is NOT a fragment delimiter there; it stays in the path, where no route
//    grammar accepts it.
//  * mux matches the percent-DECODED path (distribution never calls
//    UseEncodedPath), so "%2F" is a real separator: "/v2/a%2Fb/tags/list" is
//    the tags route of repository "a/b".
//  * mux first 301-redirects any path that path.Clean would change ("//",
//    "/./", "/../"), judged on the decoded path; redirects bypass the metrics.
//  * The router has StrictSlash(true): a path that differs from a route
//    template only by a trailing slash ("/v2", "/v2/_catalog/",
//    ".../blobs/uploads") gets a 301 that is not counted either.
//  * The route name grammar is reference.NameRegexp, whose first component
//    may be a registry host ("Localhost:5000/foo" matches). There is no
//    length limit in the route: the 255-character check happens inside the
//    handler, after the metrics wrapper, so an over-long name is counted.
//  * The blob and manifest routes use go-digest's DigestRegexp
//    `[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+`, not the stricter
//    reference.DigestRegexp: "sha256:abc" reaches the blob handler (and is
//    counted with a 400), "SHA256:abc" matches no route.
//  * Tags are `[\w][\w.-]{0,127}` and upload ids `[a-zA-Z0-9-_.=]+`.
// Distribution 2.8 has no referrers route; we classify the OCI 1.1 one anyway
// and leave it to the metrics layer whether to count it.
#include "core/route.h"

#include <array>

#include "core/ascii.h"

namespace regmeter {
namespace {

// Character classes of the route grammars, as bits in a 256-entry table so
// every byte (including non-ASCII and NUL) is a single lookup.
enum CharClass : std::uint8_t {
  kLowerAlnum = 1 << 0,   // [a-z0-9]: name components, digest algorithms
  kAlnum = 1 << 1,        // [A-Za-z0-9]: host labels
  kTagChar = 1 << 2,      // [A-Za-z0-9_.-]
  kEncodedChar = 1 << 3,  // [A-Za-z0-9=_-]: digest encoded part
  kUploadIdChar = 1 << 4, // [A-Za-z0-9-_.=]
  kDigit = 1 << 5,
  kSchemeChar = 1 << 6,   // [A-Za-z0-9+.-]: URI scheme after its first letter
};

constexpr std::array<std::uint8_t, 256> make_char_classes() {
  std::array<std::uint8_t, 256> table{};
  for (int c = 0; c < 256; ++c) {
    const bool lower = c >= 'a' && c <= 'z';
    const bool upper = c >= 'A' && c <= 'Z';
    const bool digit = c >= '0' && c <= '9';
    std::uint8_t bits = 0;
    if (lower || digit) bits |= kLowerAlnum;
    if (lower || upper || digit) bits |= kAlnum | kTagChar | kEncodedChar | kUploadIdChar | kSchemeChar;
    if (digit) bits |= kDigit;
    if (c == '_' || c == '.' || c == '-') bits |= kTagChar | kUploadIdChar;
    if (c == '=' || c == '_' || c == '-') bits |= kEncodedChar;
    if (c == '=') bits |= kUploadIdChar;
    if (c == '+' || c == '.' || c == '-') bits |= kSchemeChar;
    table[static_cast<std::size_t>(c)] = bits;
  }
  return table;
}
constexpr std::array<std::uint8_t, 256> kCharClasses = make_char_classes();

constexpr bool in_class(char c, std::uint8_t cls) {
  return (kCharClasses[static_cast<unsigned char>(c)] & cls) != 0;
}

bool all_in_class(std::string_view s, std::uint8_t cls) {
  for (char c : s) {
    if (!in_class(c, cls)) return false;
  }
  return true;
}

// ---- request target -> raw path, the way Go's url.ParseRequestURI does it ----

// Go rejects the whole request (400) if any byte of the target, query
// included, is an ASCII control character.
bool has_control_byte(std::string_view target) {
  // No early exit, so the compiler can vectorise it: with a long `_state`
  // query this is the longest scan in classify().
  unsigned found = 0;
  for (char c : target) {
    const auto byte = static_cast<unsigned char>(c);
    found |= static_cast<unsigned>(byte < 0x20) | static_cast<unsigned>(byte == 0x7f);
  }
  return found != 0;
}

// Returns false when Go would reject the target or leave URL.Path without a
// routable path (opaque "scheme:x", bare "http://host"). The authority of an
// absolute-form target is not validated: the proxy sends upstream only the
// origin form, so the path is all distribution ever sees.
bool extract_raw_path(std::string_view target, std::string_view& raw_path) {
  if (target.empty() || has_control_byte(target)) return false;

  std::string_view rest = target;
  bool has_scheme = false;
  // A scheme is a letter followed by [A-Za-z0-9+.-]* and ':'. Anything else
  // before the first ':' means "no scheme", and the target must then be a path.
  if (in_class(target[0], kAlnum) && !in_class(target[0], kDigit)) {
    std::size_t i = 1;
    while (i < target.size() && in_class(target[i], kSchemeChar)) ++i;
    if (i < target.size() && target[i] == ':') {
      rest = target.substr(i + 1);
      has_scheme = true;
    }
  }

  // The query starts at the first '?'. '#' gets no special meaning here.
  rest = rest.substr(0, rest.find('?'));
  if (rest.empty() || rest.front() != '/') return false;

  // Absolute form: "//authority" then the path. Without a scheme, "//x" is a
  // path (which mux then redirects, so it ends up as `other` below).
  if (has_scheme && rest.starts_with("//")) {
    const std::size_t path_start = rest.find('/', 2);
    if (path_start == std::string_view::npos) return false;
    rest = rest.substr(path_start);
  }
  raw_path = rest;
  return true;
}

// Decodes every %XX. Fails on a malformed escape, as Go's url.unescape does.
bool percent_decode(std::string_view raw, std::string& out) {
  out.clear();
  out.reserve(raw.size());
  for (std::size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '%') {
      out.push_back(raw[i]);
      continue;
    }
    if (i + 2 >= raw.size()) return false;
    const int high = hex_digit_value(raw[i + 1]);
    const int low = hex_digit_value(raw[i + 2]);
    if (high < 0 || low < 0) return false;
    out.push_back(static_cast<char>(high * 16 + low));
    i += 2;
  }
  return true;
}

// Calls visit(segment, last) for each '/'-separated segment of `text`,
// stopping at the first that returns false; returns whether all returned
// true. One byte loop: a path of thousands of short segments costs no call
// per segment (a memchr each made a 64 KiB target take a millisecond).
template <class Visit>
bool all_segments(std::string_view text, Visit&& visit) {
  std::size_t start = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '/') continue;
    if (!visit(text.substr(start, i - start), false)) return false;
    start = i + 1;
  }
  return visit(text.substr(start), true);
}

bool is_dot_segment(std::string_view segment) { return segment == "." || segment == ".."; }

// True when Go's path.Clean (as used by mux's cleanPath, which keeps a
// trailing slash) would leave the path unchanged: no empty, "." or ".."
// segment except an empty one after a final '/'.
bool is_clean_path(std::string_view path) {
  return all_segments(path.substr(1), [](std::string_view segment, bool last) {  // path[0] is '/'
    return !is_dot_segment(segment) && (!segment.empty() || last);
  });
}

// A "." or ".." segment anywhere in the path.
bool has_dot_segment(std::string_view path) {
  if (path.find('.') == std::string_view::npos) return false;  // one vectorised search rules most paths out
  return !all_segments(path.substr(1), [](std::string_view segment, bool) { return !is_dot_segment(segment); });
}

// The path with its dot-segments resolved (RFC 3986 §5.2.4), as a server
// that normalises before routing would see it.
std::string without_dot_segments(std::string_view path) {
  std::string out;
  all_segments(path.substr(1), [&out](std::string_view segment, bool last) {
    if (segment == "..") {
      out.resize(out.empty() ? 0 : out.rfind('/'));
      if (last) out.push_back('/');
    } else if (segment == ".") {
      if (last) out.push_back('/');
    } else {
      out.push_back('/');
      out.append(segment);
    }
    return true;
  });
  return out.empty() ? std::string("/") : out;
}

bool is_v2_path(std::string_view path) { return path.starts_with("/v2/") || path == "/v2"; }

bool has_encoded_slash(std::string_view raw_path) {
  for (std::size_t at = raw_path.find('%'); at != std::string_view::npos; at = raw_path.find('%', at + 1))
    if (at + 2 < raw_path.size() && raw_path[at + 1] == '2' && (raw_path[at + 2] == 'f' || raw_path[at + 2] == 'F'))
      return true;
  return false;
}

// ---- the route grammars ----

// Components joined by single '/', each [a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*,
// in one pass (a 64 KiB name of 32 000 components costs no call per
// component). `slashes`: whether '/' may join components at all.
bool are_name_components(std::string_view s, bool slashes = true) {
  std::size_t i = 0;
  const std::size_t n = s.size();
  while (true) {
    const std::size_t run_start = i;
    while (i < n && in_class(s[i], kLowerAlnum)) ++i;
    if (i == run_start) return false;  // separators (and '/') must sit between alphanumerics
    if (i == n) return true;
    if (s[i] == '.') {
      ++i;
    } else if (s[i] == '_') {
      ++i;
      if (i < n && s[i] == '_') ++i;  // "_" or "__", never "___"
    } else if (s[i] == '-') {
      while (i < n && s[i] == '-') ++i;
    } else if (s[i] == '/' && slashes) {
      ++i;
    } else {
      return false;
    }
  }
}

bool is_name_component(std::string_view s) { return are_name_components(s, false); }

// Registry host: labels [A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])? joined by
// single dots, then an optional ":port".
bool is_domain(std::string_view s) {
  const std::size_t colon = s.find(':');
  if (colon != std::string_view::npos) {
    const std::string_view port = s.substr(colon + 1);
    if (port.empty() || !all_in_class(port, kDigit)) return false;
    s = s.substr(0, colon);
  }
  while (true) {
    const std::size_t dot = s.find('.');
    const std::string_view label = s.substr(0, dot);
    if (label.empty() || !in_class(label.front(), kAlnum) || !in_class(label.back(), kAlnum)) return false;
    for (char c : label) {
      if (!in_class(c, kAlnum) && c != '-') return false;
    }
    if (dot == std::string_view::npos) return true;
    s = s.substr(dot + 1);
  }
}

// reference.NameRegexp: (?:domain/)?component(?:/component)*
bool is_repository_name(std::string_view name) {
  const std::size_t slash = name.find('/');
  const std::string_view first = name.substr(0, slash);
  if (is_name_component(first)) return slash == std::string_view::npos || are_name_components(name.substr(slash + 1));
  // Only a name with further components can start with a host.
  return slash != std::string_view::npos && is_domain(first) && are_name_components(name.substr(slash + 1));
}

// [\w][\w.-]{0,127}
bool is_tag(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  if (s.front() == '.' || s.front() == '-') return false;
  return all_in_class(s, kTagChar);
}

// go-digest's DigestRegexp: [a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+
bool is_digest(std::string_view s) {
  const std::size_t colon = s.find(':');
  if (colon == std::string_view::npos) return false;
  const std::string_view algorithm = s.substr(0, colon);
  const std::string_view encoded = s.substr(colon + 1);
  if (encoded.empty() || !all_in_class(encoded, kEncodedChar)) return false;

  bool after_separator = true;  // the algorithm cannot start with a separator
  for (char c : algorithm) {
    if (in_class(c, kLowerAlnum)) {
      after_separator = false;
    } else if (!after_separator && (c == '.' || c == '+' || c == '_' || c == '-')) {
      after_separator = true;
    } else {
      return false;
    }
  }
  return !after_separator;  // non-empty, and no trailing separator
}

// [a-zA-Z0-9-_.=]+ ("." and ".." never get here: mux redirects them)
bool is_upload_id(std::string_view s) { return !s.empty() && all_in_class(s, kUploadIdChar); }

struct PathMatch {
  Handler handler = Handler::other;
  std::string_view name;       // view into the path
  std::string_view reference;  // view into the path
};

// Matches a decoded, clean path against the route templates. Names contain
// '/', so every route is recognised by its suffix, read from the right; the
// suffixes are mutually exclusive, so the order distribution tries its routes
// in makes no difference.
PathMatch match_path(std::string_view path) {
  constexpr std::string_view kRoot = "/v2/";
  if (!path.starts_with(kRoot)) return {};  // includes "/v2", which distribution redirects
  const std::string_view rest = path.substr(kRoot.size());
  if (rest.empty()) return {Handler::base, {}, {}};
  if (rest == "_catalog") return {Handler::catalog, {}, {}};

  PathMatch match;
  constexpr std::string_view kTagsSuffix = "/tags/list";
  constexpr std::string_view kUploadSuffix = "/blobs/uploads/";
  if (rest.ends_with(kTagsSuffix)) {
    match = {Handler::tags, rest.substr(0, rest.size() - kTagsSuffix.size()), {}};
  } else if (rest.ends_with(kUploadSuffix)) {
    match = {Handler::blob_upload, rest.substr(0, rest.size() - kUploadSuffix.size()), {}};
  } else {
    // "<name>/<word>/<last>"
    const std::size_t last_slash = rest.rfind('/');
    if (last_slash == std::string_view::npos || last_slash == 0) return {};
    const std::string_view last = rest.substr(last_slash + 1);
    const std::string_view head = rest.substr(0, last_slash);
    const std::size_t word_slash = head.rfind('/');
    if (word_slash == std::string_view::npos) return {};
    const std::string_view word = head.substr(word_slash + 1);
    std::string_view name = head.substr(0, word_slash);

    if (word == "manifests") {
      if (!is_tag(last) && !is_digest(last)) return {};
      match.handler = Handler::manifest;
    } else if (word == "blobs") {
      if (!is_digest(last)) return {};
      match.handler = Handler::blob;
    } else if (word == "referrers") {
      if (!is_digest(last)) return {};
      match.handler = Handler::referrers;
    } else if (word == "uploads") {
      constexpr std::string_view kBlobs = "/blobs";
      if (!name.ends_with(kBlobs) || !is_upload_id(last)) return {};
      name.remove_suffix(kBlobs.size());
      match.handler = Handler::blob_upload_chunk;
    } else {
      return {};
    }
    match.name = name;
    match.reference = last;
  }
  if (!is_repository_name(match.name)) return {};
  return match;
}

Route classify_or_throw(std::string_view target) {
  Route route;
  std::string_view raw_path;
  if (!extract_raw_path(target, raw_path)) return {};

  // Decode into the repository string, which we will need anyway, so a
  // percent-encoded target costs no extra allocation.
  std::string_view path = raw_path;
  const bool decoded = raw_path.find('%') != std::string_view::npos;
  if (decoded) {
    if (!percent_decode(raw_path, route.repository)) return {};
    path = route.repository;
  }
  if (!is_clean_path(path)) return {};

  const PathMatch match = match_path(path);
  if (match.handler == Handler::other) return {};

  route.handler = match.handler;
  route.reference.assign(match.reference);  // before the scratch buffer is trimmed
  if (match.name.empty()) {
    route.repository.clear();  // base and catalog; it may hold the decoded path
  } else if (decoded) {
    // The name is a view into route.repository: trim it in place.
    const std::size_t name_begin = static_cast<std::size_t>(match.name.data() - path.data());
    const std::size_t name_end = name_begin + match.name.size();
    route.repository.resize(name_end);
    route.repository.erase(0, name_begin);
  } else {
    route.repository.assign(match.name);
  }
  return route;
}

}  // namespace

std::string_view handler_name(Handler handler) {
  switch (handler) {
    case Handler::base: return "base";
    case Handler::catalog: return "catalog";
    case Handler::tags: return "tags";
    case Handler::manifest: return "manifest";
    case Handler::blob: return "blob";
    case Handler::blob_upload: return "blob_upload";
    case Handler::blob_upload_chunk: return "blob_upload_chunk";
    case Handler::referrers: return "referrers";
    case Handler::other: break;
  }
  return "other";  // also for values outside the enum
}

std::string_view method_name(Method method) {
  switch (method) {
    case Method::get: return "get";
    case Method::head: return "head";
    case Method::post: return "post";
    case Method::put: return "put";
    case Method::patch: return "patch";
    case Method::delete_: return "delete";
    case Method::options: return "options";
    case Method::other: break;
  }
  return "other";
}

Method method_from_string(std::string_view token) {
  // Method tokens are case-sensitive (RFC 9110 9.1): "get" is not GET.
  if (token == "GET") return Method::get;
  if (token == "HEAD") return Method::head;
  if (token == "POST") return Method::post;
  if (token == "PUT") return Method::put;
  if (token == "PATCH") return Method::patch;
  if (token == "DELETE") return Method::delete_;
  if (token == "OPTIONS") return Method::options;
  return Method::other;
}

std::string_view ambiguous_path_reason(std::string_view target) {
  std::string_view raw_path;
  if (!extract_raw_path(target, raw_path)) return {};
  std::string decoded;
  std::string_view path = raw_path;
  const bool escaped = raw_path.find('%') != std::string_view::npos;
  if (escaped) {
    if (!percent_decode(raw_path, decoded)) return {};  // not a route at all (Go answers 400)
    path = decoded;
  }
  const bool dots = has_dot_segment(path);
  if (!is_v2_path(path) && !(dots && is_v2_path(without_dot_segments(path)))) return {};
  if (dots) return "dot-segment (\".\" or \"..\") in a /v2/ path";
  if (escaped && has_encoded_slash(raw_path)) return "encoded '/' (%2F) in a /v2/ path";
  return {};
}

Route classify(Method /*method*/, std::string_view target) {
  // The method is deliberately unused: see the top of this file.
  try {
    return classify_or_throw(target);
  } catch (...) {
    // Only std::bad_alloc can get here; an unclassifiable request is `other`.
    return {};
  }
}

}  // namespace regmeter
