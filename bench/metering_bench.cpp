// Issue 16's per-request additions, each on the data it sees in practice:
// manifest parsing (once per manifest GET answered 200), the error-code
// reader (once per 4xx/5xx body), the client family (once per request), the
// rate-limit headers (once per response that has them) and the pull table
// (once per manifest and blob GET). Figures: docs/metering-notes.md.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "../tests/unit/metering_test_util.h"
#include "core/client_family.h"
#include "core/manifest.h"
#include "core/pull_sessions.h"
#include "core/rate_limit.h"
#include "core/registry_error.h"

namespace {

using namespace regmeter;
using regmeter::testing::fake_digest;

using regmeter::testing::ten_layer_manifest;
using regmeter::testing::twenty_platform_index;

void run_parse_manifest(benchmark::State& state, const std::string& body, std::string_view content_type) {
  for (auto _ : state) {
    auto manifest = parse_manifest(body, content_type);
    if (!manifest) state.SkipWithError("the manifest did not parse");
    benchmark::DoNotOptimize(manifest);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.size()));
}

void BM_ParseManifest10Layers(benchmark::State& state) {
  run_parse_manifest(state, ten_layer_manifest(), "application/vnd.oci.image.manifest.v1+json");
}
BENCHMARK(BM_ParseManifest10Layers);

void BM_ParseIndex20Platforms(benchmark::State& state) {
  run_parse_manifest(state, twenty_platform_index(), "application/vnd.oci.image.index.v1+json");
}
BENCHMARK(BM_ParseIndex20Platforms);

void BM_ErrorCodeOfA404(benchmark::State& state) {
  for (auto _ : state) {
    RegistryErrorReader reader;
    reader.feed(regmeter::testing::kMissingTagErrorBody);
    benchmark::DoNotOptimize(reader.finish());
  }
}
BENCHMARK(BM_ErrorCodeOfA404);

void run_classify_user_agent(benchmark::State& state, std::string_view user_agent) {
  for (auto _ : state) benchmark::DoNotOptimize(classify_user_agent(user_agent));
}

void BM_ClientFamilyDocker(benchmark::State& state) {
  run_classify_user_agent(state, "docker/20.10.24+dfsg1 go/go1.19.8 git-commit/5d6db84 kernel/6.1.0-13-amd64 os/linux "
                                 "arch/amd64 UpstreamClient(Docker-Client/20.10.24+dfsg1 \\(linux\\))");
}
BENCHMARK(BM_ClientFamilyDocker);

void BM_ClientFamilyContainerd(benchmark::State& state) { run_classify_user_agent(state, "containerd/v2.1.4"); }
BENCHMARK(BM_ClientFamilyContainerd);

// The slowest path: no prefix matches, both substring searches run.
void BM_ClientFamilyOther(benchmark::State& state) {
  run_classify_user_agent(state, "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                                 "Chrome/120.0.0.0 Safari/537.36");
}
BENCHMARK(BM_ClientFamilyOther);

void BM_RateLimitDockerHub(benchmark::State& state) {
  for (auto _ : state) {
    RateLimitReader reader;
    reader.header("Content-Type", "application/vnd.oci.image.index.v1+json");
    reader.header("RateLimit-Limit", "100;w=21600");
    reader.header("RateLimit-Remaining", "76;w=21600");
    reader.header("Docker-RateLimit-Source", "203.0.113.9");
    benchmark::DoNotOptimize(reader.result());
  }
}
BENCHMARK(BM_RateLimitDockerHub);

// One whole pull through the table: the manifest and its 11 blob GETs, in a
// table that already holds 1000 other clients' pulls.
void BM_PullSessionOfTenLayers(benchmark::State& state) {
  auto manifest = *parse_manifest(ten_layer_manifest(), "");
  std::vector<std::string> blobs{manifest.config->digest.to_string()};
  for (const auto& layer : manifest.layers) blobs.push_back(layer.digest.to_string());
  PullSessions table;
  PullTime now{};
  std::vector<std::string> addresses;
  for (int i = 0; i < 1000; ++i) addresses.push_back("10.1." + std::to_string(i / 250) + "." + std::to_string(i % 250));
  for (const auto& address : addresses)
    table.on_manifest({address, "containerd/v2.1.4", "team/app"}, "1.0", "", manifest, now, now);
  const std::string root = fake_digest(77);
  PullKey key{"10.9.9.9", "containerd/v2.1.4", "team/app"};
  for (auto _ : state) {
    table.on_manifest(key, "1.0", root, manifest, now, now);
    std::optional<EndedPull> ended;
    for (std::size_t i = 0; i < blobs.size(); ++i)
      ended = table.on_blob(key, blobs[i], BlobRequest::get, 200, i == 0 ? 7023 : 1000 * i + 7, now, now);
    if (!ended) state.SkipWithError("the pull did not complete");
    benchmark::DoNotOptimize(ended);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * (blobs.size() + 1)));
}
BENCHMARK(BM_PullSessionOfTenLayers);

}  // namespace
