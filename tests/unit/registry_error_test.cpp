#include "core/registry_error.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cstdio>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace regmeter {

// Readable failure messages.
void PrintTo(RegistryError error, std::ostream* out) { *out << registry_error_name(error); }

namespace {

struct BodyCase {
  std::string name;
  std::string body;
  RegistryError expected;
};

// Feeds `body` in pieces of `piece` bytes (0: all at once).
RegistryError read_in_pieces(std::string_view body, std::size_t piece) {
  RegistryErrorReader reader;
  if (piece == 0) piece = body.size() + 1;
  for (std::size_t at = 0; at < body.size(); at += piece) reader.feed(body.substr(at, piece));
  return reader.finish();
}

const std::vector<BodyCase>& body_cases() {
  static const std::vector<BodyCase> cases = {
      // Captured from Debian's docker-registry 2.8.2 (distribution 2.8).
      {"missing tag",
       "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"manifest unknown\",\"detail\":{\"Tag\":\"latest\"}}]}\n",
       RegistryError::manifest_unknown},
      {"missing blob",
       "{\"errors\":[{\"code\":\"BLOB_UNKNOWN\",\"message\":\"blob unknown to registry\",\"detail\":\"sha256:"
       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"}]}\n",
       RegistryError::blob_unknown},
      {"missing repository",
       "{\"errors\":[{\"code\":\"NAME_UNKNOWN\",\"message\":\"repository name not known to registry\",\"detail\":"
       "{\"name\":\"nope\"}}]}\n",
       RegistryError::name_unknown},
      {"bad digest",
       "{\"errors\":[{\"code\":\"DIGEST_INVALID\",\"message\":\"provided digest did not match uploaded content\","
       "\"detail\":{}}]}\n",
       RegistryError::digest_invalid},
      {"bad manifest",
       "{\"errors\":[{\"code\":\"MANIFEST_INVALID\",\"message\":\"manifest invalid\",\"detail\":{\"Offset\":0}}]}\n",
       RegistryError::manifest_invalid},
      {"unknown upload",
       "{\"errors\":[{\"code\":\"BLOB_UPLOAD_INVALID\",\"message\":\"blob upload invalid\",\"detail\":{}}]}\n",
       RegistryError::blob_upload_invalid},
      {"distribution's 404 for no route", "404 page not found\n", RegistryError::none},
      // Docker Hub's answer when the pull budget is spent.
      {"docker hub 429",
       R"({"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit. You may increase )"
       R"(the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit"}]})",
       RegistryError::toomanyrequests},
      {"token auth 401",
       R"({"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":[{"Type":"repository",)"
       R"("Class":"","Name":"library/x","Action":"pull"}]}]})",
       RegistryError::unauthorized},
      {"code after message", R"({"errors":[{"message":"no","code":"DENIED"}]})", RegistryError::denied},
      {"errors after other keys, nested errors ignored",
       R"({"x":[1,{"errors":[{"code":"DENIED"}]}],"y":{"errors":[]},"errors":[{"code":"NAME_INVALID"}]})",
       RegistryError::name_invalid},
      {"first entry counts", R"({"errors":[{"code":"DENIED"},{"code":"UNAUTHORIZED"}]})", RegistryError::denied},
      {"first entry has no code", R"({"errors":[{"message":"m"},{"code":"DENIED"}]})", RegistryError::none},
      {"first entry not an object", R"({"errors":["DENIED",{"code":"DENIED"}]})", RegistryError::none},
      {"code inside a nested object of the entry", R"({"errors":[{"detail":{"code":"DENIED"}}]})",
       RegistryError::none},
      {"duplicate code: the first", R"({"errors":[{"code":"DENIED","code":"UNAUTHORIZED"}]})", RegistryError::denied},
      {"duplicate errors: the first", R"({"errors":[{"code":"DENIED"}],"errors":[{"code":"UNAUTHORIZED"}]})",
       RegistryError::denied},
      {"lower case is normalised", R"({"errors":[{"code":"manifest_unknown"}]})", RegistryError::manifest_unknown},
      {"escaped code", R"({"errors":[{"code":"MANIFEST\u005fUNKNOWN"}]})", RegistryError::manifest_unknown},
      {"distribution 3 code", R"({"errors":[{"code":"RANGE_INVALID"}]})", RegistryError::range_invalid},
      {"catch-all 500", R"({"errors":[{"code":"UNKNOWN","message":"unknown error"}]})", RegistryError::unknown},
      {"harbor's own code", R"({"errors":[{"code":"NOT_FOUND","message":"artifact not found"}]})",
       RegistryError::other},
      {"our own label values are codes like any other", R"({"errors":[{"code":"none"}]})", RegistryError::other},
      {"empty code", R"({"errors":[{"code":""}]})", RegistryError::other},
      {"whitespace around", " \r\n\t{ \"errors\" : [ { \"code\" : \"DENIED\" } ] } \n", RegistryError::denied},
      {"code is a number", R"({"errors":[{"code":404}]})", RegistryError::none},
      {"code is null", R"({"errors":[{"code":null}]})", RegistryError::none},
      {"errors is an object", R"({"errors":{"code":"DENIED"}})", RegistryError::none},
      {"errors empty", R"({"errors":[]})", RegistryError::none},
      {"code at the root", R"({"code":"DENIED"})", RegistryError::none},
      {"root is an array", R"([{"errors":[{"code":"DENIED"}]}])", RegistryError::none},
      {"empty body", "", RegistryError::none},
      {"empty object", "{}", RegistryError::none},
      {"html", "<html><body><h1>502 Bad Gateway</h1></body></html>", RegistryError::none},
      {"cut off", R"({"errors":[{"code":"DENIED")", RegistryError::none},
      {"cut inside the code", R"({"errors":[{"code":"DEN)", RegistryError::none},
      {"trailing garbage", R"({"errors":[{"code":"DENIED"}]}x)", RegistryError::none},
      {"two documents", R"({"errors":[{"code":"DENIED"}]}{})", RegistryError::none},
      {"comments are not JSON", R"({"errors":[{"code":"DENIED"}]} // no)", RegistryError::none},
      {"NUL byte", std::string("{\"errors\":[{\"code\":\"DENIED\"}]}\0", 31), RegistryError::none},
      {"gzip bytes", std::string("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", 10), RegistryError::none},
      {"deep nesting before errors", std::string(1000, '[') + std::string(1000, ']'), RegistryError::none},
      {"deep nesting in a value",
       "{\"a\":" + std::string(100, '[') + std::string(100, ']') + ",\"errors\":[{\"code\":\"DENIED\"}]}",
       RegistryError::none},
  };
  return cases;
}

TEST(RegistryErrorReader, ReadsTheFirstErrorCode) {
  for (const auto& c : body_cases()) EXPECT_EQ(read_in_pieces(c.body, 0), c.expected) << c.name;
}

TEST(RegistryErrorReader, SameAnswerWhateverTheChunking) {
  for (const auto& c : body_cases()) {
    for (std::size_t piece : {1, 2, 3, 7, 64})
      EXPECT_EQ(read_in_pieces(c.body, piece), c.expected) << c.name << " in pieces of " << piece;
    // Every split into two, so the boundary falls inside each string and escape.
    for (std::size_t split = 0; split <= c.body.size(); ++split) {
      RegistryErrorReader reader;
      reader.feed(std::string_view(c.body).substr(0, split));
      reader.feed(std::string_view(c.body).substr(split));
      ASSERT_EQ(reader.finish(), c.expected) << c.name << " split at " << split;
    }
  }
}

// {"errors":[{"code":"DENIED","message":"<lead><unit><unit>..."}]}, the
// message running on past the window, so that the window ends inside it.
std::string long_body(std::size_t lead, std::string_view unit) {
  std::string body = "{\"errors\":[{\"code\":\"DENIED\",\"message\":\"" + std::string(lead, 'a');
  while (body.size() < 2 * RegistryErrorReader::kWindowBytes) body += unit;
  return body + "\"}]}";
}

TEST(RegistryErrorReader, LongBodiesAreJudgedOnTheirWindow) {
  constexpr std::size_t kWindow = RegistryErrorReader::kWindowBytes;
  // The window ends in plain text, and at each offset of escapes (the
  // surrogate pair is the longest): a cut is not an error.
  for (std::string_view unit : {"a", "\\u00e9", "\\uD83D\\uDE00", "\\n"}) {
    for (std::size_t lead = 0; lead < unit.size(); ++lead) {
      std::string body = long_body(lead, unit);
      ASSERT_GT(body.size(), kWindow);
      EXPECT_EQ(read_in_pieces(body, 0), RegistryError::denied) << unit << " lead " << lead;
      EXPECT_EQ(read_in_pieces(body, 1000), RegistryError::denied) << unit << " lead " << lead;
    }
  }
  // The code past the window is never seen.
  std::string late = "{\"padding\":\"" + std::string(kWindow, 'p') + "\",\"errors\":[{\"code\":\"DENIED\"}]}";
  EXPECT_EQ(read_in_pieces(late, 0), RegistryError::none);
  // Garbage inside the window after the code: not JSON, window or not.
  std::string garbage = "{\"errors\":[{\"code\":\"DENIED\"}]}garbage" + std::string(2 * kWindow, 'g');
  EXPECT_EQ(read_in_pieces(garbage, 0), RegistryError::none);
  // Broken well before the window's end.
  std::string broken = "{\"errors\":[{\"code\":\"DENIED\",\"message\":\"\\x\"" + std::string(2 * kWindow, ' ');
  EXPECT_EQ(read_in_pieces(broken, 0), RegistryError::none);
}

TEST(RegistryErrorReader, LooksAtNoMoreThanTheWindow) {
  RegistryErrorReader reader;
  std::string filler(RegistryErrorReader::kWindowBytes - 1, ' ');
  reader.feed(filler);
  EXPECT_TRUE(reader.wants_more());
  reader.feed("  ");
  EXPECT_FALSE(reader.wants_more());
  reader.feed(std::string(1 << 20, 'x'));  // a no-op
  EXPECT_EQ(reader.finish(), RegistryError::none);
  EXPECT_FALSE(reader.wants_more());
}

TEST(RegistryErrorReader, FinishTwiceGivesTheSameAnswer) {
  RegistryErrorReader reader;
  reader.feed(R"({"errors":[{"code":"MANIFEST\u005fUNKNOWN"}]})");
  EXPECT_EQ(reader.finish(), RegistryError::manifest_unknown);
  EXPECT_EQ(reader.finish(), RegistryError::manifest_unknown);
  reader.feed("more");  // after finish: ignored
  EXPECT_EQ(reader.finish(), RegistryError::manifest_unknown);
}

TEST(RegistryError, EveryCodeMapsToItselfByName) {
  std::set<std::string_view> names;
  for (std::size_t i = 0; i < kRegistryErrorCount; ++i) {
    auto error = static_cast<RegistryError>(i);
    auto name = registry_error_name(error);
    EXPECT_TRUE(names.insert(name).second) << "duplicate label value " << name;
    if (error != RegistryError::none && error != RegistryError::other) {
      EXPECT_EQ(registry_error_from_code(name), error) << name;
    }
  }
  EXPECT_EQ(names.size(), 22u);
  // The issue's list, spelled as the label values.
  for (std::string_view code :
       {"BLOB_UNKNOWN", "BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN", "DIGEST_INVALID", "MANIFEST_BLOB_UNKNOWN",
        "MANIFEST_INVALID", "MANIFEST_UNKNOWN", "NAME_INVALID", "NAME_UNKNOWN", "SIZE_INVALID", "UNAUTHORIZED",
        "DENIED", "UNSUPPORTED", "TOOMANYREQUESTS", "TAG_INVALID", "MANIFEST_UNVERIFIED", "PAGINATION_NUMBER_INVALID",
        "RANGE_INVALID", "UNAVAILABLE", "UNKNOWN", "none", "other"})
    EXPECT_TRUE(names.count(code)) << code;
  for (std::string_view code : {"none", "other", "", "MANIFEST_UNKNOWN ", "MANIFEST", "DENIEDX", "NOT_FOUND"})
    EXPECT_EQ(registry_error_from_code(code), RegistryError::other) << code;
}

TEST(RegistryError, ErrorBodyReadable) {
  struct Case {
    int status;
    bool head;
    std::string_view encoding;
    bool readable;
  };
  for (const Case& c : std::vector<Case>{{404, false, "", true},
                                         {500, false, "identity", true},
                                         {429, false, " Identity ", true},
                                         {599, false, "", true},
                                         {404, true, "", false},
                                         {404, false, "gzip", false},
                                         {404, false, "br", false},
                                         {200, false, "", false},
                                         {307, false, "", false},
                                         {399, false, "", false},
                                         {600, false, "", false}})
    EXPECT_EQ(error_body_readable(c.status, c.head, c.encoding), c.readable)
        << c.status << " head=" << c.head << " encoding=" << c.encoding;
}

// Hostile upstreams: random bytes, random JSON around random codes. Whatever
// comes in, the answer is one of the closed set, and a code outside the
// table is `other`.
TEST(RegistryError, HostileBodiesStayInTheClosedSet) {
  std::mt19937_64 random(16);
  std::set<std::string_view> closed;
  for (std::size_t i = 0; i < kRegistryErrorCount; ++i) closed.insert(registry_error_name(static_cast<RegistryError>(i)));
  auto byte = [&] { return static_cast<char>(random() & 0xff); };
  for (int round = 0; round < 20000; ++round) {
    std::string code;
    if (round % 100 == 0) {
      // A real code in random case: normalised to itself.
      code = registry_error_name(static_cast<RegistryError>(2 + random() % (kRegistryErrorCount - 2)));
      for (char& c : code)
        if (random() % 2) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else {
      std::size_t length = random() % 40;
      for (std::size_t i = 0; i < length; ++i)
        code.push_back(round % 2 ? "ABCDEFGHIJKLMNOPQRSTUVWXYZ_"[random() % 27] : byte());
    }
    RegistryError direct = registry_error_from_code(code);
    ASSERT_TRUE(closed.count(registry_error_name(direct)));
    ASSERT_NE(direct, RegistryError::none);
    if (direct != RegistryError::other) {
      std::string upper = code;
      for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      ASSERT_EQ(upper, registry_error_name(direct));
    } else if (round % 100 == 0) {
      FAIL() << "a real code in another case was not recognised: " << code;
    }

    std::string escaped;
    for (char c : code) {
      auto u = static_cast<unsigned char>(c);
      if (c == '"' || c == '\\' || u < 0x20) {
        char buffer[8];
        std::snprintf(buffer, sizeof buffer, "\\u%04x", u);
        escaped += buffer;
      } else {
        escaped.push_back(c);
      }
    }
    std::string body = "{\"errors\":[{\"code\":\"" + escaped + "\"}]}";
    RegistryError parsed = read_in_pieces(body, 1 + random() % 16);
    ASSERT_TRUE(closed.count(registry_error_name(parsed)));
    ASSERT_EQ(parsed, direct) << body;  // well-formed bodies always give their code's class

    std::string noise(random() % 200, '\0');
    for (char& c : noise) c = byte();
    ASSERT_TRUE(closed.count(registry_error_name(read_in_pieces(noise, 1 + random() % 8))));
  }
}

}  // namespace
}  // namespace regmeter
