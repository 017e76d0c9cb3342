// libFuzzer target: route classification (classify) on arbitrary targets.
//
// Invariants besides "no crash, no sanitizer report":
//  * deterministic, and the same for every Method (distribution picks the
//    route from the path alone);
//  * other ⇒ empty repository and reference; base and catalog ⇒ both empty;
//    tags and blob_upload ⇒ a repository and no reference; manifest, blob,
//    referrers, blob_upload_chunk ⇒ both;
//  * a repository is a name: non-empty components joined by single '/',
//    only [a-z0-9._-] (plus [A-Z:] in a leading registry-host component);
//  * the query does not matter: "<path>?x=y" classifies like "<path>";
//  * an absolute-form target classifies like its origin form
//    ("http://h" + "/v2/..."), since only the path ever reaches the registry;
//  * method_from_string / method_name round-trip for the known methods;
//  * ambiguous_path_reason (the connection's 400 NAME_INVALID): the query
//    and absolute form do not change it; it refuses only targets with a '.'
//    or a '%'; of the targets classify names a route, only those with an
//    encoded '/' (classify already finds no route in a dot-segment path).
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_common.h"
#include "core/route.h"

using regmeter::Handler;
using regmeter::Method;
using regmeter::Route;

namespace {

bool same(const Route& a, const Route& b) {
  return a.handler == b.handler && a.repository == b.repository && a.reference == b.reference;
}

std::string describe(const Route& r) {
  return std::string(regmeter::handler_name(r.handler)) + " repo=[" + fuzz::shown(r.repository) + "] ref=[" +
         fuzz::shown(r.reference) + "]";
}

void check_shape(const Route& r, std::string_view target) {
  const char* t = nullptr;
  std::string shown_target = fuzz::shown(target);
  t = shown_target.c_str();
  switch (r.handler) {
    case Handler::other:
    case Handler::base:
    case Handler::catalog:
      FUZZ_CHECK(r.repository.empty() && r.reference.empty(), "%s for %s", describe(r).c_str(), t);
      return;
    case Handler::tags:
    case Handler::blob_upload:
      FUZZ_CHECK(!r.repository.empty() && r.reference.empty(), "%s for %s", describe(r).c_str(), t);
      break;
    case Handler::manifest:
    case Handler::blob:
    case Handler::referrers:
    case Handler::blob_upload_chunk:
      FUZZ_CHECK(!r.repository.empty() && !r.reference.empty(), "%s for %s", describe(r).c_str(), t);
      break;
  }
  const std::string& name = r.repository;
  FUZZ_CHECK(name.front() != '/' && name.back() != '/' && name.find("//") == std::string::npos,
             "repository [%s] has empty components (%s)", fuzz::shown(name).c_str(), t);
  std::size_t first_slash = name.find('/');
  for (std::size_t i = 0; i < name.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(name[i]);
    bool lower = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' || c == '/';
    bool host_only = (c >= 'A' && c <= 'Z') || c == ':';
    FUZZ_CHECK(lower || (host_only && first_slash != std::string::npos && i < first_slash),
               "repository [%s] has byte 0x%02x (%s)", fuzz::shown(name).c_str(), c, t);
  }
  for (unsigned char c : r.reference)
    FUZZ_CHECK(c > 0x20 && c < 0x7f && c != '/' && c != '?', "reference [%s] has byte 0x%02x (%s)",
               fuzz::shown(r.reference).c_str(), c, t);
}

constexpr Method kMethods[] = {Method::get,   Method::head,    Method::post,    Method::put,
                               Method::patch, Method::delete_, Method::options, Method::other};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 64 * 1024) return 0;
  std::string_view target(reinterpret_cast<const char*>(data), size);

  const Route first = regmeter::classify(Method::get, target);
  check_shape(first, target);
  for (Method m : kMethods) {
    Route r = regmeter::classify(m, target);
    FUZZ_CHECK(same(r, first), "classify differs by method %s: %s vs %s for %s",
               std::string(regmeter::method_name(m)).c_str(), describe(r).c_str(), describe(first).c_str(),
               fuzz::shown(target).c_str());
  }
  FUZZ_CHECK(same(regmeter::classify(Method::get, target), first), "classify is not deterministic");

  // The query never changes the route.
  if (target.find('?') == std::string_view::npos) {
    std::string with_query = std::string(target) + "?n=1&last=x&_state=abc";
    Route q = regmeter::classify(Method::get, with_query);
    FUZZ_CHECK(same(q, first), "a query changed the route: %s vs %s for %s", describe(q).c_str(),
               describe(first).c_str(), fuzz::shown(target).c_str());
  }
  // Absolute form = origin form.
  if (!target.empty() && target.front() == '/') {
    std::string absolute = "http://registry.test:5000" + std::string(target);
    Route a = regmeter::classify(Method::get, absolute);
    FUZZ_CHECK(same(a, first), "absolute form differs: %s vs %s for %s", describe(a).c_str(), describe(first).c_str(),
               fuzz::shown(target).c_str());
  }

  // The path refusal.
  const bool refused = !regmeter::ambiguous_path_reason(target).empty();
  if (refused)
    FUZZ_CHECK(target.find('.') != std::string_view::npos || target.find('%') != std::string_view::npos,
               "refused without a dot or an escape: %s", fuzz::shown(target).c_str());
  if (refused && first.handler != Handler::other) {
    std::string lower(target);
    for (char& c : lower) c = static_cast<char>(c + 32 * (c >= 'A' && c <= 'Z'));
    FUZZ_CHECK(lower.find("%2f") != std::string::npos, "a route refused without an encoded slash: %s",
               fuzz::shown(target).c_str());
  }
  if (target.find('?') == std::string_view::npos) {
    bool with_query = !regmeter::ambiguous_path_reason(std::string(target) + "?a=/../%2F").empty();
    FUZZ_CHECK(with_query == refused, "a query changed the path refusal: %s", fuzz::shown(target).c_str());
  }
  if (!target.empty() && target.front() == '/') {
    bool absolute = !regmeter::ambiguous_path_reason("http://registry.test:5000" + std::string(target)).empty();
    FUZZ_CHECK(absolute == refused, "absolute form changed the path refusal: %s", fuzz::shown(target).c_str());
  }

  // Method tokens: known ones round-trip, anything else is "other".
  Method m = regmeter::method_from_string(target);
  if (m != Method::other) {
    std::string upper(regmeter::method_name(m));
    for (char& c : upper) c = static_cast<char>(c - 32 * (c >= 'a' && c <= 'z'));
    FUZZ_CHECK(upper == target, "method_from_string(%s) = %s", fuzz::shown(target).c_str(),
               std::string(regmeter::method_name(m)).c_str());
  }
  return 0;
}
