// The header path of one proxied request: parse the client's head, classify
// it, rebuild it for the upstream; parse the upstream's answer and rebuild it
// for the client. Everything per request except moving bytes and metrics.
#include <benchmark/benchmark.h>

#include <string>

#include "core/headers.h"
#include "core/http_head.h"
#include "core/route.h"
#include "core/upload_session.h"

namespace {

using regmeter::MessageParser;

const std::string kPatchHead =
    "PATCH /v2/team/app/web/blobs/uploads/1c773db0-4860-4984-84fb-28cfd757ced1?_state="
    "xMbQjZkdBgCxf8IugtqFGFjZArOS0j5i9yUetAMhl797Ik5hbWUiOiJmb28vYmFyIiwiVVVJRCI6IjFjNzczZGIwLTQ4NjAtNDk4NC04NGZiLTI4Y2"
    "ZkNzU3Y2VkMSIsIk9mZnNldCI6MCwiU3RhcnRlZEF0IjoiMjAyNi0xMS0yNVQxMDoxMToxOC42MDc2OTIwODVaIn0%3D&_rm=18eb42fa74b88f3a.0"
    " HTTP/1.1\r\n"
    "Host: registry.example.com:5080\r\n"
    "User-Agent: containers/5.24.1 (github.com/containers/image)\r\n"
    "Content-Type: application/octet-stream\r\n"
    "Authorization: Bearer eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJhY2Nlc3MiOltdfQ.c2lnbmF0dXJl\r\n"
    "Transfer-Encoding: chunked\r\n"
    "Accept-Encoding: gzip\r\n"
    "\r\n";

const std::string kPatchResponse =
    "HTTP/1.1 202 Accepted\r\n"
    "Content-Length: 0\r\n"
    "Docker-Distribution-Api-Version: registry/2.0\r\n"
    "Docker-Upload-Uuid: 1c773db0-4860-4984-84fb-28cfd757ced1\r\n"
    "Location: http://registry.example.com:5080/v2/team/app/web/blobs/uploads/1c773db0-4860-4984-84fb-28cfd757ced1"
    "?_state=xMbQjZkdBgCxf8IugtqFGFjZArOS0j5i9yUetAMhl797Ik5hbWUiOiJmb28vYmFyIn0%3D\r\n"
    "Range: 0-52428799\r\n"
    "Date: Wed, 25 Nov 2026 10:11:18 GMT\r\n"
    "\r\n";

const std::string kManifestGet =
    "GET /v2/library/alpine/manifests/3.20 HTTP/1.1\r\n"
    "Host: registry.example.com:5080\r\n"
    "User-Agent: docker/27.3.1 go/go1.22.7\r\n"
    "Accept: application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json\r\n"
    "Accept-Encoding: gzip\r\n"
    "\r\n";

// What ClientConnection does with a request head: scan it as it arrives,
// parse it, check the path, classify it, rebuild it for the upstream.
bool process_request(MessageParser& parser, const std::string& head_bytes, const regmeter::ForwardContext& forward) {
  regmeter::HeadScanner scanner(true);
  scanner.scan(head_bytes);
  parser.reset();
  bool ok = scanner.status() == regmeter::HeadScanner::Status::complete && parser.parse_head(head_bytes);
  benchmark::DoNotOptimize(scanner);
  if (!ok) return false;
  std::string target = regmeter::origin_form(parser.head().target);
  auto why = regmeter::ambiguous_path_reason(target);
  auto token = regmeter::take_session_token(target);
  regmeter::Route route = regmeter::classify(regmeter::method_from_string(parser.head().method), target);
  std::string upstream = regmeter::upstream_request_head(parser.head(), target, forward);
  benchmark::DoNotOptimize(why);
  benchmark::DoNotOptimize(token);
  benchmark::DoNotOptimize(route);
  benchmark::DoNotOptimize(upstream);
  return true;
}

void request_path(benchmark::State& state, const std::string& head_bytes,
                  regmeter::HeadLimits limits = regmeter::HeadLimits{}, bool must_accept = true) {
  MessageParser parser(MessageParser::Kind::request, limits);
  regmeter::ForwardContext forward{"192.0.2.7", "http", false, "registry.example.com", {}};
  if (process_request(parser, head_bytes, forward) != must_accept) {
    state.SkipWithError(must_accept ? ("refused: " + parser.error()).c_str() : "accepted, expected a refusal");
    return;
  }
  state.SetLabel(std::to_string(head_bytes.size()) + " B, " + (must_accept ? "accepted" : "refused"));
  for (auto _ : state) benchmark::DoNotOptimize(process_request(parser, head_bytes, forward));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * head_bytes.size()));
}

void BM_RequestHead_UploadPatch(benchmark::State& state) { request_path(state, kPatchHead); }
void BM_RequestHead_ManifestGet(benchmark::State& state) { request_path(state, kManifestGet); }

// What ClientConnection does with an upstream's head: scan, parse, rebuild.
bool process_response(MessageParser& parser, const std::string& head_bytes, const regmeter::ResponseContext& context) {
  regmeter::HeadScanner scanner(false);
  scanner.scan(head_bytes);
  parser.reset();
  bool ok = scanner.status() == regmeter::HeadScanner::Status::complete && parser.parse_head(head_bytes);
  if (!ok) return false;
  std::string client = regmeter::client_response_head(parser.head(), context);
  benchmark::DoNotOptimize(client);
  return true;
}

void response_path(benchmark::State& state, const std::string& head_bytes) {
  MessageParser parser(MessageParser::Kind::response);
  regmeter::SessionToken token{1764064800123456789, 52428800};
  regmeter::ResponseContext context{"registry.example.com:5080", "http", "proxy.example.com:5080", false, &token};
  if (!process_response(parser, head_bytes, context)) {
    state.SkipWithError(("refused: " + parser.error()).c_str());
    return;
  }
  state.SetLabel(std::to_string(head_bytes.size()) + " B, accepted");
  for (auto _ : state) benchmark::DoNotOptimize(process_response(parser, head_bytes, context));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * head_bytes.size()));
}

void BM_ResponseHead_UploadAccepted(benchmark::State& state) { response_path(state, kPatchResponse); }

// ---- hostile 64 KiB heads ----
//
// Each is as large as the default --max-header-bytes allows and, where its
// shape has a cap, as close to it as accepted: the most work a head of that
// shape can cause. Request heads run under the highest --max-header-fields
// (10000), responses under their fixed caps (1000 fields, 256 KiB).

constexpr std::size_t kHeadBytes = 64 * 1024;
const regmeter::HeadLimits kRaised{kHeadBytes, 10000};

// Appends `line(i)` (one field line, CRLF included) while the head, with
// `last` (a last field line, or nothing) and its blank line, stays within
// kHeadBytes and `max_fields` fields; then ends the head.
template <class Line>
std::string fill_head(std::string head, std::size_t fields, std::size_t max_fields, Line&& line,
                      const std::string& last = {}) {
  if (!last.empty()) ++fields;
  for (std::size_t i = 0;; ++i) {
    std::string next = line(i);
    if (next.empty() || fields >= max_fields || head.size() + next.size() + last.size() + 2 > kHeadBytes) break;
    head += next;
    ++fields;
  }
  return head + last + "\r\n";
}

// "c<n>: <value>\r\n", built by appends (GCC 12 warns about "c" + string
// with a false -Wrestrict).
std::string numbered_field(std::size_t n, std::string_view value) {
  std::string line = "c";
  line.append(std::to_string(n)).append(": ").append(value).append("\r\n");
  return line;
}

std::string connection_list(std::size_t options) {
  std::string list;
  for (std::size_t i = 0; i < options; ++i) list.append(i ? ", c" : "c").append(std::to_string(i));
  return list;
}

// The most Connection options accepted, and fields that they name or not.
const std::string kManyConnectionOptions = fill_head(
    "GET /v2/library/alpine/manifests/3.20 HTTP/1.1\r\nHost: registry.example.com\r\nConnection: " +
        connection_list(regmeter::kMaxConnectionOptions) + "\r\n",
    2, kRaised.max_fields, [](std::size_t i) { return numbered_field(i % 128, "v"); });
// The issue's head: 15 000 Connection tokens and 6 000 short fields.
std::string issue_head() {
  std::string head = "GET /v2/ HTTP/1.1\r\nHost: a\r\nConnection: ";
  for (int i = 0; i < 15000; ++i) head += i ? ",c" : "c";
  head += "\r\n";
  for (int i = 0; i < 6000; ++i) head.append("x:").append(std::to_string(i % 10)).append("\r\n");
  return head + "\r\n";
}
const std::string kIssueHead = issue_head();
const std::string kTinyFields = fill_head("GET /v2/ HTTP/1.1\r\nHost: a\r\n", 1, kRaised.max_fields,
                                          [](std::size_t) { return std::string("a:b\r\n"); });
const std::string kOneHugeField =
    "GET /v2/ HTTP/1.1\r\nHost: a\r\nX-Huge: " + std::string(kHeadBytes - 40, 'h') + "\r\n\r\n";
const std::string kHugeTarget = [] {
  std::string target = "/v2/a";
  while (target.size() < kHeadBytes - 60) target += "/a";
  return "GET " + target + "/manifests/latest HTTP/1.1\r\nHost: a\r\n\r\n";
}();
// A request may carry one Transfer-Encoding field: this one is refused, but
// only after every field was read and checked.
const std::string kManyTransferEncodingFields =
    fill_head("PATCH /v2/a/blobs/uploads/u HTTP/1.1\r\nHost: a\r\n", 1, kRaised.max_fields,
              [](std::size_t) { return std::string("Transfer-Encoding: chunked\r\n"); });
// A response may stack codings before chunked: the most fields of them.
const std::string kResponseManyCodings =
    fill_head("HTTP/1.1 200 OK\r\n", 0, regmeter::kResponseHeadLimits.max_fields,
              [](std::size_t) { return std::string("Transfer-Encoding: gzip, deflate, gzip, deflate, gzip\r\n"); },
              "Transfer-Encoding: chunked\r\n");
const std::string kResponseConnectionOptions = fill_head(
    "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: " + connection_list(regmeter::kMaxConnectionOptions) + "\r\n",
    2, regmeter::kResponseHeadLimits.max_fields,
    [](std::size_t i) { return numbered_field(i % 128, std::string(40, 'v')); });

void BM_HostileHead_ManyConnectionOptions(benchmark::State& s) { request_path(s, kManyConnectionOptions, kRaised); }
void BM_HostileHead_TheIssuesHead_Refused(benchmark::State& s) {
  request_path(s, kIssueHead, regmeter::HeadLimits{}, false);
}
void BM_HostileHead_TheIssuesHead_RaisedLimits_Refused(benchmark::State& s) {
  request_path(s, kIssueHead, kRaised, false);
}
void BM_HostileHead_TinyFields(benchmark::State& s) { request_path(s, kTinyFields, kRaised); }
void BM_HostileHead_TinyFields_DefaultLimit_Refused(benchmark::State& s) {
  request_path(s, kTinyFields, regmeter::HeadLimits{}, false);
}
void BM_HostileHead_OneHugeField(benchmark::State& s) { request_path(s, kOneHugeField, kRaised); }
void BM_HostileHead_HugeTarget(benchmark::State& s) { request_path(s, kHugeTarget, kRaised); }
void BM_HostileHead_ManyTransferEncodingFields_Refused(benchmark::State& s) {
  request_path(s, kManyTransferEncodingFields, kRaised, false);
}
void BM_HostileResponseHead_ManyTransferCodings(benchmark::State& s) { response_path(s, kResponseManyCodings); }
void BM_HostileResponseHead_ManyConnectionOptions(benchmark::State& s) {
  response_path(s, kResponseConnectionOptions);
}

}  // namespace

BENCHMARK(BM_RequestHead_UploadPatch);
BENCHMARK(BM_RequestHead_ManifestGet);
BENCHMARK(BM_ResponseHead_UploadAccepted);
BENCHMARK(BM_HostileHead_ManyConnectionOptions)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_HostileHead_TheIssuesHead_Refused)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_HostileHead_TheIssuesHead_RaisedLimits_Refused)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_HostileHead_TinyFields)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_HostileHead_TinyFields_DefaultLimit_Refused)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_HostileHead_OneHugeField)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_HostileHead_HugeTarget)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_HostileHead_ManyTransferEncodingFields_Refused)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_HostileResponseHead_ManyTransferCodings)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_HostileResponseHead_ManyConnectionOptions)->Unit(benchmark::kMicrosecond);
