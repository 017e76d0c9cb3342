// The header path of one proxied request: parse the client's head, classify
// it, rebuild it for the upstream; parse the upstream's answer and rebuild it
// for the client. Everything per request except moving bytes and metrics.
#include <benchmark/benchmark.h>

#include <string>

#include "regmeter/headers.h"
#include "regmeter/http_head.h"
#include "regmeter/route.h"
#include "regmeter/upload_session.h"

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

void request_path(benchmark::State& state, const std::string& head_bytes) {
  MessageParser parser(MessageParser::Kind::request);
  regmeter::ForwardContext forward{"192.0.2.7", "http", false};
  for (auto _ : state) {
    parser.reset();
    bool ok = parser.parse_head(head_bytes);
    std::string target = regmeter::origin_form(parser.head().target);
    auto token = regmeter::take_session_token(target);
    regmeter::Route route =
        regmeter::classify(regmeter::method_from_string(parser.head().method), target);
    std::string upstream = regmeter::upstream_request_head(parser.head(), target, forward);
    benchmark::DoNotOptimize(ok);
    benchmark::DoNotOptimize(token);
    benchmark::DoNotOptimize(route);
    benchmark::DoNotOptimize(upstream);
  }
}

void BM_RequestHead_UploadPatch(benchmark::State& state) { request_path(state, kPatchHead); }
void BM_RequestHead_ManifestGet(benchmark::State& state) { request_path(state, kManifestGet); }

void BM_ResponseHead_UploadAccepted(benchmark::State& state) {
  MessageParser parser(MessageParser::Kind::response);
  regmeter::SessionToken token{1764064800123456789, 52428800};
  regmeter::ResponseContext context{"registry.example.com:5080", "http", "proxy.example.com:5080", false, &token};
  for (auto _ : state) {
    parser.reset();
    bool ok = parser.parse_head(kPatchResponse);
    std::string client = regmeter::client_response_head(parser.head(), context);
    benchmark::DoNotOptimize(ok);
    benchmark::DoNotOptimize(client);
  }
}

}  // namespace

BENCHMARK(BM_RequestHead_UploadPatch);
BENCHMARK(BM_RequestHead_ManifestGet);
BENCHMARK(BM_ResponseHead_UploadAccepted);
