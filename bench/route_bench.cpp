// classify() runs once per proxied request, so it must stay far below the
// cost of the I/O around it (target: well under 1 us).
#include "core/route.h"

#include <benchmark/benchmark.h>

#include <string>

namespace {

using regmeter::classify;
using regmeter::Method;

void run_classify(benchmark::State& state, Method method, const std::string& target) {
  for (auto _ : state) {
    auto route = classify(method, target);
    benchmark::DoNotOptimize(route);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(target.size()));
}

void BM_ClassifyManifestByTag(benchmark::State& state) {
  run_classify(state, Method::get, "/v2/library/ubuntu/manifests/22.04");
}
BENCHMARK(BM_ClassifyManifestByTag);

void BM_ClassifyBlobByDigest(benchmark::State& state) {
  run_classify(state, Method::get,
               "/v2/team/project/app/blobs/"
               "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}
BENCHMARK(BM_ClassifyBlobByDigest);

// What distribution's Location looks like: a UUID plus a ~400-byte signed
// _state token, followed on the final PUT by the digest.
void BM_ClassifyUploadChunkWithState(benchmark::State& state) {
  std::string target = "/v2/team/project/app/blobs/uploads/6d9b2f4e-8c1a-4b57-9e3d-2a7f0c5e1b84?_state=";
  for (int i = 0; i < 8; ++i) target += "Pk2b6m0VhGZPqW3yQbK8nW4TqYf1JXo_3mRr9xT7uLdZ7Ie0tHkP5wCvA2sN";
  target += "%3D&digest=sha256%3Ae3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
  run_classify(state, Method::put, target);
}
BENCHMARK(BM_ClassifyUploadChunkWithState);

// A percent-encoded name takes the decoding path.
void BM_ClassifyPercentEncodedName(benchmark::State& state) {
  run_classify(state, Method::head, "/v2/library%2Fubuntu/manifests/latest");
}
BENCHMARK(BM_ClassifyPercentEncodedName);

void BM_ClassifyNotARoute(benchmark::State& state) { run_classify(state, Method::get, "/favicon.ico"); }
BENCHMARK(BM_ClassifyNotARoute);

}  // namespace
