// Route classification. The expectations marked "distribution" were checked
// against a running docker-registry 2.8.2 by watching which handler label its
// registry_http_requests_total incremented (or that none did).
#include "core/route.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <ostream>
#include <random>
#include <string>
#include <vector>

namespace regmeter {
namespace {

const std::string kDigest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
// An upload id and `_state` token of the shape distribution hands out.
const std::string kUploadId = "6d9b2f4e-8c1a-4b57-9e3d-2a7f0c5e1b84";
const std::string kState =
    "_state=Pk2b6m0VhGZPqW3yQbK8nW4TqYf1JXo_3mRr9xT7uLdZ7Ie0tHkP5wCvA2sNbJcF4gD6hE8iK0lM1nO3pQ5rS7tU9vW"
    "xYzAbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_ZmFrZS5zdGF0ZS50b2tlbi5mb3IudGVzdHM%3D";

struct Case {
  Method method;
  std::string target;
  Handler handler;
  std::string repository;
  std::string reference;
  std::string why;
};

// gtest prints this when a case fails, instead of a byte dump.
void PrintTo(const Case& c, std::ostream* os) {
  std::string shown = c.target;
  if (shown.size() > 120) shown = shown.substr(0, 120) + "...(" + std::to_string(c.target.size()) + " bytes)";
  *os << method_name(c.method) << " \"" << shown << "\" -> " << handler_name(c.handler) << " (" << c.why << ")";
}

Case other(Method method, std::string target, std::string why) {
  return {method, std::move(target), Handler::other, "", "", std::move(why)};
}

std::vector<Case> route_cases() {
  const Method get = Method::get, head = Method::head, post = Method::post, put = Method::put,
               patch = Method::patch, del = Method::delete_;
  const std::string& d = kDigest;
  std::vector<Case> cases = {
      // ---- base ----
      {get, "/v2/", Handler::base, "", "", "version check"},
      {head, "/v2/", Handler::base, "", "", "any method; handler decides"},
      {get, "/v2/?probe=1", Handler::base, "", "", "query ignored"},
      other(get, "/v2", "distribution: StrictSlash answers 301 -> /v2/, not counted"),
      other(get, "//v2/", "distribution: mux cleanPath redirects"),
      other(get, "/V2/", "path is case-sensitive"),
      other(get, "/v2/%76%32/", "decodes to /v2/v2/, no route"),

      // ---- catalog ----
      {get, "/v2/_catalog", Handler::catalog, "", "", "catalog"},
      {get, "/v2/_catalog?n=10&last=library%2Fubuntu", Handler::catalog, "", "", "catalog with pagination"},
      other(get, "/v2/_catalog/", "distribution: trailing slash is a 301"),
      other(get, "/v2/foo/_catalog", "catalog only at the root"),

      // ---- tags ----
      {get, "/v2/library/ubuntu/tags/list", Handler::tags, "library/ubuntu", "", "tags"},
      {get, "/v2/foo/tags/list?n=5&last=v1", Handler::tags, "foo", "", "tags with pagination"},
      {get, "/v2/foo/manifests/tags/list", Handler::tags, "foo/manifests", "", "route word inside the name"},
      {get, "/v2/a/blobs/manifests/x/tags/list", Handler::tags, "a/blobs/manifests/x", "", "distribution"},
      other(get, "/v2/foo/tags/list/", "distribution: trailing slash is a 301"),
      other(get, "/v2/tags/list", "empty name"),
      other(get, "/v2/foo/tags/list;x", "';' is not a separator in Go"),

      // ---- manifest ----
      {get, "/v2/library/ubuntu/manifests/latest", Handler::manifest, "library/ubuntu", "latest", "pull by tag"},
      {head, "/v2/a/b/c/d/manifests/v1.2.3-rc_1", Handler::manifest, "a/b/c/d", "v1.2.3-rc_1", "nested name"},
      {get, "/v2/foo/manifests/" + d, Handler::manifest, "foo", d, "pull by digest"},
      {put, "/v2/foo/manifests/latest", Handler::manifest, "foo", "latest", "push"},
      {del, "/v2/foo/manifests/" + d, Handler::manifest, "foo", d, "delete by digest"},
      {post, "/v2/foo/manifests/latest", Handler::manifest, "foo", "latest", "distribution: 405 counted as manifest"},
      {Method::options, "/v2/foo/manifests/latest", Handler::manifest, "foo", "latest", "method not considered"},
      {get, "/v2/a/manifests/b/manifests/latest", Handler::manifest, "a/manifests/b", "latest", "distribution"},
      {get, "/v2/foo/blobs/manifests/latest", Handler::manifest, "foo/blobs", "latest", "repository named foo/blobs"},
      {get, "/v2/blobs/uploads/manifests/latest", Handler::manifest, "blobs/uploads", "latest", "route words as name"},
      {get, "/v2/foo/manifests/_x", Handler::manifest, "foo", "_x", "tag may start with _"},
      {get, "/v2/foo/manifests/" + std::string(128, 'a'), Handler::manifest, "foo", std::string(128, 'a'),
       "distribution: 128-char tag"},
      other(get, "/v2/foo/manifests/" + std::string(129, 'a'), "distribution: 129-char tag matches no route"),
      other(get, "/v2/foo/manifests/.x", "distribution: tag cannot start with ."),
      other(get, "/v2/foo/manifests/-x", "distribution: tag cannot start with -"),
      {get, "/v2/foo/manifests/sha256:abc", Handler::manifest, "foo", "sha256:abc",
       "distribution: go-digest regexp has no length rule; handler answers the error"},
      {get, "/v2/foo/manifests/sha256+b.x:A-_=", Handler::manifest, "foo", "sha256+b.x:A-_=", "distribution"},
      other(get, "/v2/foo/manifests/Sha256:abc", "distribution: upper-case algorithm, and ':' is no tag char"),
      other(get, "/v2/foo/manifests/latest/", "distribution: trailing slash is a 301"),
      other(get, "/v2/foo/manifests/", "empty reference"),
      other(get, "/v2/manifests/latest", "empty name"),

      // ---- blob ----
      {get, "/v2/foo/blobs/" + d, Handler::blob, "foo", d, "pull blob"},
      {head, "/v2/library/ubuntu/blobs/" + d, Handler::blob, "library/ubuntu", d, "existence check"},
      {del, "/v2/foo/blobs/" + d, Handler::blob, "foo", d, "delete blob"},
      {get, "/v2/foo/blobs/tarsum.v1+sha256:0123456789abcdef", Handler::blob, "foo",
       "tarsum.v1+sha256:0123456789abcdef", "compound algorithm"},
      {get, "/v2/foo/blobs/sha256:abc", Handler::blob, "foo", "sha256:abc",
       "distribution: short hex still routes (400 DIGEST_INVALID, counted)"},
      {get, "/v2/foo/blobs/sha256:zz_-=", Handler::blob, "foo", "sha256:zz_-=", "distribution: encoded part"},
      other(get, "/v2/foo/blobs/:abc", "distribution: missing algorithm"),
      other(get, "/v2/foo/blobs/abc", "distribution: no ':'"),
      other(get, "/v2/foo/blobs/SHA256:" + d.substr(7), "distribution: upper-case algorithm"),
      other(get, "/v2/foo/blobs/sha256:", "distribution: empty encoded part"),
      other(get, "/v2/foo/blobs/sha256+:abc", "distribution: trailing separator in algorithm"),
      other(get, "/v2/foo/blobs/a..b:abc", "distribution: doubled separator"),
      other(get, "/v2/foo/blobs/sha256:ab:cd", "only one ':'"),
      other(get, "/v2/foo/blobs/" + d + "/", "distribution: trailing slash is a 301"),

      // ---- blob_upload ----
      {post, "/v2/foo/blobs/uploads/", Handler::blob_upload, "foo", "", "start upload"},
      {post, "/v2/library/ubuntu/blobs/uploads/?digest=" + d, Handler::blob_upload, "library/ubuntu", "",
       "monolithic upload"},
      {post, "/v2/foo/blobs/uploads/?mount=" + d + "&from=library/ubuntu", Handler::blob_upload, "foo", "",
       "cross-repository mount"},
      {post, "/v2/blobs/blobs/uploads/", Handler::blob_upload, "blobs", "", "repository named blobs"},
      {get, "/v2/a/manifests/b/blobs/uploads/", Handler::blob_upload, "a/manifests/b", "", "route word in name"},
      other(post, "/v2/foo/blobs/uploads", "distribution: missing trailing slash is a 301"),
      other(post, "/v2/blobs/uploads/", "empty name"),

      // ---- blob_upload_chunk ----
      {patch, "/v2/foo/blobs/uploads/" + kUploadId + "?" + kState, Handler::blob_upload_chunk, "foo", kUploadId,
       "chunk with _state"},
      {put, "/v2/foo/blobs/uploads/" + kUploadId + "?" + kState + "&digest=" + d, Handler::blob_upload_chunk, "foo",
       kUploadId, "final PUT"},
      {get, "/v2/a/b/c/blobs/uploads/" + kUploadId, Handler::blob_upload_chunk, "a/b/c", kUploadId, "status"},
      {del, "/v2/foo/blobs/uploads/" + kUploadId + "?" + kState, Handler::blob_upload_chunk, "foo", kUploadId,
       "cancel"},
      {patch, "/v2/foo/bar/blobs/uploads/RDk1MzA2RkEtRkFEMy00RTM2LThENDEtQ0YxQzkzRUY4Mjg2IA==",
       Handler::blob_upload_chunk, "foo/bar", "RDk1MzA2RkEtRkFEMy00RTM2LThENDEtQ0YxQzkzRUY4Mjg2IA==",
       "base64 id with '='"},
      {patch, "/v2/foo/blobs/uploads/abc-DEF_1.2=", Handler::blob_upload_chunk, "foo", "abc-DEF_1.2=",
       "every id character class"},
      {get, "/v2/foo/blobs/uploads/.x", Handler::blob_upload_chunk, "foo", ".x", "distribution"},
      {patch, "/v2/foo/blobs/uploads/abc%3Ddef", Handler::blob_upload_chunk, "foo", "abc=def",
       "distribution: id is decoded"},
      {patch, "http://127.0.0.1:5000/v2/foo/blobs/uploads/" + kUploadId + "?" + kState, Handler::blob_upload_chunk,
       "foo", kUploadId, "absolute Location with port"},
      {put, "https://registry.example.com:443/v2/team/app/blobs/uploads/" + kUploadId + "?digest=" + d,
       Handler::blob_upload_chunk, "team/app", kUploadId, "https absolute form"},
      other(get, "/v2/foo/blobs/uploads/..", "distribution: cleanPath redirect"),
      other(get, "/v2/foo/blobs/uploads/.", "distribution: cleanPath redirect"),
      other(get, "/v2/foo/blobs/uploads/%2e%2e", "distribution: redirect judged on the decoded path"),
      other(get, "/v2/foo/blobs/uploads/abc+def", "distribution: '+' is no id char"),
      other(get, "/v2/foo/blobs/uploads/sha256:abc", "distribution: ':' is no id char"),
      other(patch, "/v2/foo/blobs/uploads/abc/", "distribution: trailing slash is a 301"),
      other(patch, "/v2/foo/blobs/uploads/a%2Fb", "distribution: decoded '/' splits the id"),
      other(get, "/v2/blobs/uploads/x", "distribution: empty name"),
      other(get, "/v2/foo/uploads/x", "uploads must follow blobs"),

      // ---- referrers (OCI 1.1; not a distribution 2.8 route) ----
      {get, "/v2/foo/referrers/" + d, Handler::referrers, "foo", d, "referrers"},
      {get, "/v2/a/b/referrers/" + d + "?artifactType=application%2Fvnd.example", Handler::referrers, "a/b", d,
       "referrers with filter"},
      other(get, "/v2/foo/referrers/latest", "referrers take a digest"),
      other(get, "/v2/foo/referrers/", "empty digest"),

      // ---- repository names ----
      other(get, "/v2/Foo/manifests/latest", "distribution: upper-case single component"),
      other(get, "/v2/foo/Bar/manifests/latest", "distribution: upper-case later component"),
      {get, "/v2/Foo/bar/manifests/latest", Handler::manifest, "Foo/bar", "latest",
       "distribution: first of several components may be a registry host"},
      {get, "/v2/localhost:5000/foo/manifests/latest", Handler::manifest, "localhost:5000/foo", "latest",
       "distribution: host with port"},
      {get, "/v2/A-b.C:80/x/tags/list", Handler::tags, "A-b.C:80/x", "", "distribution"},
      other(get, "/v2/a:80/tags/list", "distribution: a host alone is no name"),
      other(get, "/v2/a:/x/tags/list", "distribution: empty port"),
      other(get, "/v2/a_b:1/x/tags/list", "distribution: '_' not allowed in a host"),
      other(get, "/v2/a-/x/tags/list", "distribution: host label cannot end with '-'"),
      other(get, "/v2/a.b..c/x/tags/list", "distribution: empty host label"),
      {get, "/v2/a__b/tags/list", Handler::tags, "a__b", "", "distribution: double underscore"},
      {get, "/v2/a--b/tags/list", Handler::tags, "a--b", "", "distribution: dashes repeat"},
      {get, "/v2/a.b-c_d/tags/list", Handler::tags, "a.b-c_d", "", "each separator"},
      other(get, "/v2/a___b/tags/list", "distribution: triple underscore"),
      other(get, "/v2/a..b/tags/list", "distribution: double dot"),
      other(get, "/v2/a._b/tags/list", "distribution: mixed separators"),
      other(get, "/v2/-a/tags/list", "distribution: leading separator"),
      other(get, "/v2/a-/tags/list", "distribution: trailing separator"),
      {get, "/v2/" + std::string(300, 'a') + "/tags/list", Handler::tags, std::string(300, 'a'), "",
       "distribution: no length limit in the route; 255 is enforced inside the handler"},

      // ---- percent-encoding ----
      {get, "/v2/foo%2Fbar/manifests/latest", Handler::manifest, "foo/bar", "latest",
       "distribution: mux matches the decoded path"},
      {get, "/v2/foo%2fbar/manifests/latest", Handler::manifest, "foo/bar", "latest", "lower-case hex"},
      {get, "/v2/%66oo/manifests/lat%65st", Handler::manifest, "foo", "latest", "distribution"},
      {get, "/v2/foo/tags%2flist", Handler::tags, "foo", "", "distribution: encoded route separator"},
      {get, "/v2%2F", Handler::base, "", "", "distribution: decodes to /v2/"},
      {get, "/v2%2F_catalog", Handler::catalog, "", "", "distribution: decodes to /v2/_catalog"},
      {get, "/v2/foo/manifests/latest?a=%zz", Handler::manifest, "foo", "latest", "distribution: query not decoded"},
      other(get, "/v2/foo/manifests/latest%", "distribution: 400, '%' at the end"),
      other(get, "/v2/foo/manifests/latest%4", "distribution: 400, truncated escape"),
      other(get, "/v2/foo/manifests/latest%zz", "distribution: 400, not hex"),
      other(get, "/v2/foo%2F%2Fbar/tags/list", "distribution: decoded '//' is redirected"),
      other(get, "/v2/foo/tags/list%2F", "distribution: decoded trailing slash is a 301"),
      other(get, "/v2/foo/manifests/lat%00est", "decoded NUL is no tag char"),

      // ---- fragments: Go keeps '#' in the path of a request target ----
      other(get, "/v2/foo/manifests/latest#frag", "distribution: '#' is part of the path"),
      other(get, "/v2/foo/tags/list#", "distribution"),
      {get, "/v2/foo/manifests/latest?#", Handler::manifest, "foo", "latest", "distribution: '#' in the query"},
      {get, "/v2/_catalog?n=1#x", Handler::catalog, "", "", "distribution"},

      // ---- path cleaning ----
      other(get, "/v2/foo//manifests/latest", "distribution: cleanPath redirect"),
      other(get, "/v2/foo/./manifests/latest", "distribution: cleanPath redirect"),
      other(get, "/v2/foo/bar/../manifests/latest", "distribution: cleanPath redirect"),

      // ---- absolute form ----
      {get, "http://127.0.0.1:5000/v2/", Handler::base, "", "", "absolute form"},
      {get, "HTTP://x/v2/foo/tags/list?n=1", Handler::tags, "foo", "", "distribution: scheme case-insensitive"},
      {get, "http:/v2/foo/tags/list", Handler::tags, "foo", "", "distribution: scheme without authority"},
      other(get, "http://127.0.0.1:5000", "distribution: empty path is a 301"),
      other(get, "http://127.0.0.1:5000?x=/v2/", "no path"),
      other(get, "http:x/v2/", "distribution: opaque URL"),
      other(get, "1http://x/v2/", "distribution: 400, scheme must start with a letter"),

      // ---- not v2, empty, garbage ----
      other(get, "", "empty"),
      other(get, "/", "root"),
      other(Method::options, "*", "distribution: answered by net/http itself"),
      other(get, "/v1/foo/manifests/latest", "v1"),
      other(get, "/metrics", "not the registry API"),
      other(get, "v2/foo/tags/list", "distribution: 400, no leading slash"),
      other(get, "/v2/foo/manifests/\x01", "distribution: 400, control byte"),
      other(get, "/v2/foo/manifests/latest?a=\x01", "distribution: 400, control byte in the query"),
      other(get, "/v2/foo/manifests/latest\x7f", "DEL is a control byte"),
      other(get, std::string("/v2/foo/manifests/la\0st", 23), "embedded NUL"),
      other(get, "/v2/f\xc3\xb6o/manifests/latest", "non-ASCII name"),
      other(get, "\xff\xfe\xfd", "binary"),
      other(get, "?", "query only"),
      other(get, "%", "lone percent"),
  };

  // ---- very long targets (100 KB) ----
  std::string long_name = "a";
  while (long_name.size() < 100 * 1024) long_name += "/a";
  cases.push_back({get, "/v2/" + long_name + "/manifests/latest", Handler::manifest, long_name, "latest",
                   "100 KB name of valid components"});
  cases.push_back({patch, "/v2/foo/blobs/uploads/" + kUploadId + "?_state=" + std::string(100 * 1024, 'Z'),
                   Handler::blob_upload_chunk, "foo", kUploadId, "100 KB query"});
  cases.push_back(other(get, "/v2/" + std::string(100 * 1024, '/'), "100 KB of slashes"));
  cases.push_back(other(get, "/v2/foo/manifests/" + std::string(100 * 1024, 'a'), "100 KB tag"));
  cases.push_back(other(get, std::string(100 * 1024, '%'), "100 KB of '%'"));
  cases.push_back({get, "/v2/" + std::string(100 * 1024, 'A') + "/x/tags/list", Handler::tags,
                   std::string(100 * 1024, 'A') + "/x", "", "host labels have no length limit either"});
  return cases;
}

class ClassifyTest : public testing::TestWithParam<Case> {};

TEST_P(ClassifyTest, MatchesDistributionRouter) {
  const Case& c = GetParam();
  const Route route = classify(c.method, c.target);
  EXPECT_EQ(handler_name(route.handler), handler_name(c.handler));
  EXPECT_EQ(route.repository, c.repository);
  EXPECT_EQ(route.reference, c.reference);
}

INSTANTIATE_TEST_SUITE_P(Routes, ClassifyTest, testing::ValuesIn(route_cases()));

TEST(ClassifyTest, CaseCountMeetsTheBar) { EXPECT_GE(route_cases().size(), 60u); }

// Random and mutated targets: never throws, never crashes, and `other` always
// comes with empty strings. Named routes always carry a repository.
TEST(ClassifyTest, SurvivesArbitraryBytes) {
  std::mt19937 rng(20240611);
  const std::vector<std::string> seeds = {
      "/v2/", "/v2/foo/manifests/latest", "/v2/a/b/blobs/" + kDigest, "/v2/foo/blobs/uploads/x?" + kState,
      "http://h:1/v2/foo%2Fbar/tags/list", "/v2/_catalog?n=1"};
  const std::string alphabet = "/%?#:.-_=+aAzZ09v2\x01\x7f\xff ";
  for (int i = 0; i < 100000; ++i) {
    std::string target;
    if (i % 2 == 0) {
      target.resize(rng() % 64);
      for (char& ch : target) ch = static_cast<char>(rng() & 0xff);
    } else {
      target = seeds[rng() % seeds.size()];
      for (int edits = 1 + static_cast<int>(rng() % 4); edits > 0 && !target.empty(); --edits) {
        const std::size_t at = rng() % target.size();
        switch (rng() % 3) {
          case 0: target[at] = alphabet[rng() % alphabet.size()]; break;
          case 1: target.erase(at, 1); break;
          default: target.insert(at, 1, alphabet[rng() % alphabet.size()]); break;
        }
      }
    }
    Route route;
    ASSERT_NO_THROW(route = classify(Method::get, target)) << target;
    switch (route.handler) {
      case Handler::other:
      case Handler::base:
      case Handler::catalog:
        EXPECT_TRUE(route.repository.empty()) << target;
        EXPECT_TRUE(route.reference.empty()) << target;
        break;
      default:
        EXPECT_FALSE(route.repository.empty()) << target;
        break;
    }
  }
}

TEST(ClassifyTest, QueryNeverChangesTheRoute) {
  for (const Case& c : route_cases()) {
    if (c.target.find_first_of("?#") != std::string::npos || c.target.size() > 4096) continue;
    if (c.target.empty() || c.target == "*") continue;
    const Route route = classify(c.method, c.target + "?_state=a%2F%zz&digest=" + kDigest);
    EXPECT_EQ(route.handler, c.handler) << c.target;
    EXPECT_EQ(route.repository, c.repository) << c.target;
    EXPECT_EQ(route.reference, c.reference) << c.target;
  }
}

// Go decodes the whole path before mux matches it, so escaping every byte
// after the leading '/' must not change the outcome.
TEST(ClassifyTest, FullyPercentEncodedPathGivesTheSameRoute) {
  for (const Case& c : route_cases()) {
    if (c.target.empty() || c.target.front() != '/' || c.target.find_first_of("%?#") != std::string::npos) continue;
    std::string encoded = "/";
    for (std::size_t i = 1; i < c.target.size(); ++i) {
      static constexpr char kHex[] = "0123456789ABCDEF";
      const auto byte = static_cast<unsigned char>(c.target[i]);
      encoded += '%';
      encoded += kHex[byte >> 4];
      encoded += kHex[byte & 0xf];
    }
    const Route route = classify(c.method, encoded);
    EXPECT_EQ(route.handler, c.handler) << c.target;
    EXPECT_EQ(route.repository, c.repository) << c.target;
    EXPECT_EQ(route.reference, c.reference) << c.target;
  }
}

TEST(MethodTest, NamesRoundTrip) {
  const std::vector<std::pair<std::string, Method>> tokens = {
      {"GET", Method::get},     {"HEAD", Method::head},       {"POST", Method::post},
      {"PUT", Method::put},     {"PATCH", Method::patch},     {"DELETE", Method::delete_},
      {"OPTIONS", Method::options}};
  for (const auto& [token, method] : tokens) {
    EXPECT_EQ(method_from_string(token), method) << token;
    std::string lower = token;
    for (char& ch : lower) ch = static_cast<char>(ch - 'A' + 'a');
    EXPECT_EQ(method_name(method), lower);
  }
  EXPECT_EQ(method_name(Method::other), "other");
  EXPECT_EQ(tokens.size() + 1, kMethodCount);
}

TEST(MethodTest, TokensAreCaseSensitive) {
  EXPECT_EQ(method_from_string("get"), Method::other);
  EXPECT_EQ(method_from_string("Get"), Method::other);
  EXPECT_EQ(method_from_string("delete"), Method::other);
  EXPECT_EQ(method_from_string("DELETE "), Method::other);
  EXPECT_EQ(method_from_string(""), Method::other);
  EXPECT_EQ(method_from_string("TRACE"), Method::other);
  EXPECT_EQ(method_from_string("CONNECT"), Method::other);
  EXPECT_EQ(method_from_string(std::string("GET\0", 4)), Method::other);
}

TEST(MethodTest, NamesAreDistinctAndOutOfRangeIsOther) {
  std::vector<std::string_view> names;
  for (std::size_t i = 0; i < kMethodCount; ++i) names.push_back(method_name(static_cast<Method>(i)));
  for (std::size_t i = 0; i < names.size(); ++i) {
    for (std::size_t j = i + 1; j < names.size(); ++j) EXPECT_NE(names[i], names[j]);
  }
  EXPECT_EQ(method_name(static_cast<Method>(200)), "other");
}

TEST(HandlerTest, NamesMatchDistributionLabels) {
  const std::vector<std::pair<Handler, std::string_view>> expected = {
      {Handler::base, "base"},
      {Handler::catalog, "catalog"},
      {Handler::tags, "tags"},
      {Handler::manifest, "manifest"},
      {Handler::blob, "blob"},
      {Handler::blob_upload, "blob_upload"},
      {Handler::blob_upload_chunk, "blob_upload_chunk"},
      {Handler::referrers, "referrers"},
      {Handler::other, "other"}};
  ASSERT_EQ(expected.size(), kHandlerCount);
  for (std::size_t i = 0; i < kHandlerCount; ++i) {
    // The enum order is the label index others rely on.
    EXPECT_EQ(static_cast<std::size_t>(expected[i].first), i);
    EXPECT_EQ(handler_name(expected[i].first), expected[i].second);
  }
  EXPECT_EQ(handler_name(static_cast<Handler>(200)), "other");
}

}  // namespace
}  // namespace regmeter

namespace regmeter {
namespace {

// ambiguous_path_reason: the /v2/ paths the connection refuses with 400
// NAME_INVALID before anything is forwarded (issue 13, item 5).
TEST(AmbiguousPath, DotSegmentsAndEncodedSlashesUnderV2) {
  const std::string d = kDigest;
  const char* const refused[] = {
      "/v2/a/../b/manifests/x",
      "/v2/a/%2e%2e/b/manifests/x",
      "/v2/a/%2E%2E/b/manifests/x",
      "/v2/a/.%2e/b/manifests/x",
      "/v2/a/%2e./b/manifests/x",
      "/v2/a/./b/manifests/x",
      "/v2/a/%2e/b/manifests/x",
      "/v2/./manifests/x",
      "/v2/a/manifests/x/.",
      "/v2/a/manifests/x/..",
      "/v2/a/manifests/..",
      "/v2/..",
      "/v2/.",
      "/v2/a%2Fb/manifests/x",
      "/v2/a%2fb/manifests/x",
      "/v2/a/manifests/x%2Fy",
      "/v2/foo/tags%2flist",
      "/v2%2F",
      "/v2%2F..%2Fx",
      "/%76%32/a/../b/manifests/x",             // "/v2/..." once decoded
      "/x/../v2/b/manifests/x",                 // becomes a /v2/ path once resolved
      "/x/%2e%2e/v2/b/manifests/x",
      "/v2/a/../b/manifests/x?n=1",
      "http://registry.example/v2/a/../b/manifests/x",  // absolute form: its path
  };
  for (const char* target : refused) EXPECT_FALSE(ambiguous_path_reason(target).empty()) << target;

  const std::string fine[] = {
      "/v2/",
      "/v2/_catalog?n=10&last=library%2Fubuntu",  // in the query: not the path
      "/v2/a/b/manifests/latest",
      "/v2/a/b/manifests/" + d,
      "/v2/a.b/c..d/tags/list",  // dots inside a segment are not dot-segments (the route decides)
      "/v2/a/blobs/uploads/",
      "/v2/a/blobs/uploads/" + kUploadId + "?" + kState,
      "/v2/a/manifests/x.",
      "/v2/...",
      "/v2//a/manifests/x",      // an empty segment: distribution redirects; not ours to refuse
      "/v2/a%41/tags/list",      // other escapes are decoded by the route
      "/v2/a%zz/tags/list",      // a bad escape: no route at all
      "/static/../x",            // not a /v2/ path
      "/a/./b",
      "/v3/a/../b",
      "/v2a/../b",
      "/",
      "",
      "*",
      "/v2/a/manifests/x?path=/v2/../../etc",
  };
  for (const auto& target : fine) EXPECT_TRUE(ambiguous_path_reason(target).empty()) << target;
}

// The check sits beside classify() and leaves it alone (the route table
// above is unchanged); the connection asks both.
TEST(AmbiguousPath, ClassifyIsUnchanged) {
  EXPECT_EQ(classify(Method::get, "/v2/foo%2Fbar/manifests/latest").repository, "foo/bar");
  EXPECT_EQ(classify(Method::get, "/v2/foo/./manifests/latest").handler, Handler::other);
  // Of the table's valid routes, only those with an encoded '/' are refused.
  std::size_t refused_valid_routes = 0;
  for (const auto& c : route_cases())
    if (c.handler != Handler::other && !ambiguous_path_reason(c.target).empty()) {
      ++refused_valid_routes;
      EXPECT_NE(c.target.find("%2"), std::string::npos) << "a valid route refused: " << c.target;
    }
  EXPECT_GT(refused_valid_routes, 0u);  // the %2F cases of the table
}

}  // namespace
}  // namespace regmeter
