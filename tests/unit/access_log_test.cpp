#include "net/access_log.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

namespace regmeter {
namespace {

TEST(AccessLine, HasEveryFieldAsJson) {
  AccessRecord r;
  r.started_unix_ns = 1764064800123456789;  // 2025-11-25T10:00:00.123Z
  r.client = "10.0.0.7";
  r.method = "PATCH";
  r.handler = "blob_upload_chunk";
  r.repository = "team/app";
  r.reference = "3f1c";
  r.status = 202;
  r.request_bytes = 1048576;
  r.response_bytes = 0;
  r.duration_s = 1.5;
  r.upstream_header_s = 1.25;
  r.upload_session = "3f1c";
  r.user_agent = "docker/27.0 \"quoted\"\\";
  std::string out;
  format_access_line(out, r);
  EXPECT_EQ(out,
            "{\"time\":\"2025-11-25T10:00:00.123Z\",\"client\":\"10.0.0.7\",\"method\":\"PATCH\","
            "\"handler\":\"blob_upload_chunk\",\"repository\":\"team/app\",\"reference\":\"3f1c\",\"status\":202,"
            "\"request_bytes\":1048576,\"response_bytes\":0,\"duration_s\":1.500000,\"upstream_header_s\":1.250000,"
            "\"upload_session\":\"3f1c\",\"user_agent\":\"docker/27.0 \\\"quoted\\\"\\\\\"}\n");
}

TEST(AccessLine, RequestIdsAfterTheUserAgent) {
  AccessRecord r;
  r.started_unix_ns = 1'000'000'000;
  r.method = "GET";
  r.status = 200;
  r.request_id = "0123456789abcdef0001000000000007";
  r.client_request_id = "client \"own\" id";
  r.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  std::string out;
  format_access_line(out, r);
  EXPECT_NE(out.find(",\"user_agent\":\"\",\"request_id\":\"0123456789abcdef0001000000000007\","
                     "\"client_request_id\":\"client \\\"own\\\" id\",\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\"}\n"),
            std::string::npos)
      << out;
  AccessRecord none;
  out.clear();
  format_access_line(out, none);
  EXPECT_EQ(out.find("request_id"), std::string::npos) << out;
  EXPECT_EQ(out.find("trace_id"), std::string::npos) << out;
}

TEST(AccessLine, OmitsWhatDidNotHappenAndEscapesControls) {
  AccessRecord r;
  r.started_unix_ns = 1'000'000'000;
  r.method = "GET";
  r.handler = "other";
  r.status = 502;
  r.user_agent = std::string_view("a\nb\x01", 4);
  r.session_outcome = "";
  std::string out;
  format_access_line(out, r);
  EXPECT_EQ(out.find("upstream_header_s"), std::string::npos);
  EXPECT_EQ(out.find("upload_session"), std::string::npos);
  EXPECT_NE(out.find("\"user_agent\":\"a\\nb\\u0001\""), std::string::npos) << out;
  EXPECT_EQ(out.back(), '\n');
  EXPECT_EQ(out.find('\n'), out.size() - 1);  // one line, whatever the input
}

TEST(AccessLine, ClientFamilyAndErrorCodeAfterTheUserAgent) {
  AccessRecord r;
  r.started_unix_ns = 1'000'000'000;
  r.method = "GET";
  r.handler = "manifest";
  r.status = 404;
  r.user_agent = "containerd/1.6.20";
  r.client_family = "containerd";
  r.error = "MANIFEST_UNKNOWN";
  std::string out;
  format_access_line(out, r);
  EXPECT_NE(out.find("\"user_agent\":\"containerd/1.6.20\",\"client_family\":\"containerd\",\"error\":\"MANIFEST_UNKNOWN\"}"),
            std::string::npos)
      << out;
  r.error = "";  // a success has no error field
  out.clear();
  format_access_line(out, r);
  EXPECT_EQ(out.find("\"error\""), std::string::npos) << out;
}

TEST(AccessEvent, IsOneJsonLineWithTimeEventAndFieldsInOrder) {
  AccessEvent event{1764064800123456789,
                    "upload_session_abandoned",
                    {{"repository", std::string_view("team/\"app\"")},
                     {"upload_session", std::string_view("3f1c")},
                     {"bytes", std::uint64_t{7000}},
                     {"age_s", 3.25},
                     {"idle_s", 2.0}}};
  std::string out;
  format_access_event(out, event);
  EXPECT_EQ(out,
            "{\"time\":\"2025-11-25T10:00:00.123Z\",\"event\":\"upload_session_abandoned\","
            "\"repository\":\"team/\\\"app\\\"\",\"upload_session\":\"3f1c\",\"bytes\":7000,"
            "\"age_s\":3.250000,\"idle_s\":2.000000}\n");
}

TEST(AccessEvent, EscapesTextLikeRequestLines) {
  std::string out;
  format_access_event(out, {1'000'000'000, "rejected", {{"client", std::string_view("a\nb\x01")}}});
  EXPECT_EQ(out, "{\"time\":\"1970-01-01T00:00:01.000Z\",\"event\":\"rejected\",\"client\":\"a\\nb\\u0001\"}\n");
  EXPECT_EQ(out.find('\n'), out.size() - 1);
}

TEST(AccessEvent, RejectedConnectionIsAnEventLine) {
  std::string out;
  format_access_event(out, {1764064800123456789,
                            "rejected",
                            {{"reason", std::string_view("tls_on_plain_port")},
                             {"client", std::string_view("10.0.0.7")},
                             {"status", std::uint64_t{400}}}});
  EXPECT_EQ(out,
            "{\"time\":\"2025-11-25T10:00:00.123Z\",\"event\":\"rejected\",\"reason\":\"tls_on_plain_port\","
            "\"client\":\"10.0.0.7\",\"status\":400}\n");
}

TEST(AccessLogSink, WritesBatchesToTheFileAndReopens) {
  char dir_template[] = "/tmp/regmeter-access-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  std::string path = std::string(dir_template) + "/access.log";
  {
    AccessLogSink sink(path);
    AccessLogBuffer buffer(&sink);
    AccessRecord r;
    r.started_unix_ns = 1'000'000'000;
    r.method = "GET";
    r.handler = "base";
    r.status = 200;
    for (int i = 0; i < 1000; ++i) buffer.add(r);
    buffer.add(AccessEvent{2'000'000'000, "upload_session_abandoned", {{"bytes", std::uint64_t{1}}}});
    buffer.flush();
  }  // the sink writes everything queued before it stops
  std::ifstream in(path);
  std::string line, last;
  int lines = 0;
  while (std::getline(in, line)) {
    ++lines;
    ASSERT_EQ(line.front(), '{');
    ASSERT_EQ(line.back(), '}');
    last = line;
  }
  EXPECT_EQ(lines, 1001);
  EXPECT_NE(last.find("\"event\":\"upload_session_abandoned\""), std::string::npos) << last;
  std::remove(path.c_str());
  rmdir(dir_template);
}

TEST(AccessLogSink, UnwritablePathIsAClearError) {
  try {
    AccessLogSink sink("/nonexistent-dir/access.log");
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/access.log"), std::string::npos);
  }
}

}  // namespace
}  // namespace regmeter

#include "core/json.h"

namespace regmeter {
namespace {

TEST(JsonString, KeepsUtf8AndEscapesEverythingElse) {
  EXPECT_EQ(json_string("plain"), "\"plain\"");
  EXPECT_EQ(json_string("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xb3"), "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xb3\"");
  // obs-text that is not UTF-8: each byte as its own code point.
  EXPECT_EQ(json_string("caf\xe9 \xff"), "\"caf\\u00e9 \\u00ff\"");
  EXPECT_EQ(json_string("\xc3"), "\"\\u00c3\"");                 // truncated sequence
  EXPECT_EQ(json_string("\xc0\xaf"), "\"\\u00c0\\u00af\"");      // overlong
  EXPECT_EQ(json_string("\xed\xa0\x80"), "\"\\u00ed\\u00a0\\u0080\"");  // surrogate
  EXPECT_EQ(json_string("q\"b\\n\n\x01\x7f"), "\"q\\\"b\\\\n\\n\\u0001\\u007f\"");
}

}  // namespace
}  // namespace regmeter
