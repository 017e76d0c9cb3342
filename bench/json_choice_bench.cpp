// Why RapidJSON (docs/metering-notes.md, "Which JSON parser"): the same
// extraction — an image manifest's config and layer digests and sizes, an
// index's child digests, sizes and platforms, an error body's first code —
// done with each JSON library Debian ships, on the same bodies. The
// RapidJSON rows are the real code (parse_manifest, RegistryErrorReader,
// with all their checks); the others do the extraction only, without the
// duplicate-key, depth and type checks, so they are if anything flattered.
// Not part of the meson build: simdjson and nlohmann-json are no dependency
// of regmeter (tests/e2e/examples.sh holds the Dockerfile to every meson
// dependency). Build and run it by hand, after building build-tests/:
//   apt-get install libsimdjson-dev nlohmann-json3-dev
//   g++ -std=c++20 -O2 -DNDEBUG -Isrc bench/json_choice_bench.cpp build-tests/src/libregmeter_core_metering.a
//       -lsimdjson -lbenchmark -lbenchmark_main -lpthread -o build-tests/json_choice_bench    (one line)
//   build-tests/json_choice_bench --benchmark_repetitions=5
#include <benchmark/benchmark.h>

#include <nlohmann/json.hpp>
#include <simdjson.h>

#include <string>
#include <vector>

#include "../tests/unit/metering_test_util.h"
#include "core/manifest.h"
#include "core/registry_error.h"

namespace {

using namespace regmeter;
using regmeter::testing::fake_digest;

using regmeter::testing::kMissingTagErrorBody;

const std::string& image_body() { return regmeter::testing::ten_layer_manifest(); }
const std::string& index_body() { return regmeter::testing::twenty_platform_index(); }

// What each variant produces, so none can skip work.
struct Extracted {
  std::vector<std::pair<Digest, std::uint64_t>> blobs;
  std::vector<std::pair<Digest, std::string>> children;
};

// ------------------------------------------------------------ RapidJSON (ours)
void BM_RapidJson_Image(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(parse_manifest(image_body(), ""));
}
void BM_RapidJson_Index(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(parse_manifest(index_body(), ""));
}
void BM_RapidJson_Error(benchmark::State& state) {
  for (auto _ : state) {
    RegistryErrorReader reader;
    reader.feed(kMissingTagErrorBody);
    benchmark::DoNotOptimize(reader.finish());
  }
}

// ------------------------------------------------------------ simdjson on demand
// It needs the whole body, padded: the copy into a padded buffer is part of
// the cost (the proxy would have to keep the body in one).
bool simdjson_image(simdjson::ondemand::parser& parser, const std::string& body, Extracted& out) {
  simdjson::padded_string padded(body);
  simdjson::ondemand::document doc;
  if (parser.iterate(padded).get(doc)) return false;
  std::string_view digest;
  std::uint64_t size;
  simdjson::ondemand::object config;
  if (doc["config"].get_object().get(config)) return false;
  if (config["digest"].get_string().get(digest) || config["size"].get_uint64().get(size)) return false;
  out.blobs.emplace_back(*Digest::parse(digest), size);
  simdjson::ondemand::array layers;
  if (doc["layers"].get_array().get(layers)) return false;
  for (auto layer : layers) {
    simdjson::ondemand::object object;
    if (layer.get_object().get(object)) return false;
    if (object["digest"].get_string().get(digest) || object["size"].get_uint64().get(size)) return false;
    out.blobs.emplace_back(*Digest::parse(digest), size);
  }
  return true;
}

bool simdjson_index(simdjson::ondemand::parser& parser, const std::string& body, Extracted& out) {
  simdjson::padded_string padded(body);
  simdjson::ondemand::document doc;
  if (parser.iterate(padded).get(doc)) return false;
  simdjson::ondemand::array manifests;
  if (doc["manifests"].get_array().get(manifests)) return false;
  for (auto entry : manifests) {
    simdjson::ondemand::object object;
    std::string_view digest, os, arch;
    if (entry.get_object().get(object)) return false;
    if (object["digest"].get_string().get(digest)) return false;
    simdjson::ondemand::object platform;
    if (object["platform"].get_object().get(platform)) return false;
    if (platform["architecture"].get_string().get(arch) || platform["os"].get_string().get(os)) return false;
    out.children.emplace_back(*Digest::parse(digest), std::string(os) + "/" + std::string(arch));
  }
  return true;
}

void run_simdjson(benchmark::State& state, bool (*extract)(simdjson::ondemand::parser&, const std::string&, Extracted&),
                  const std::string& body) {
  simdjson::ondemand::parser parser;  // reused, as a thread_local would be
  for (auto _ : state) {
    Extracted out;
    if (!extract(parser, body, out)) state.SkipWithError("parse failed");
    benchmark::DoNotOptimize(out);
  }
}
void BM_Simdjson_Image(benchmark::State& state) { run_simdjson(state, simdjson_image, image_body()); }
void BM_Simdjson_Index(benchmark::State& state) { run_simdjson(state, simdjson_index, index_body()); }
void BM_Simdjson_Error(benchmark::State& state) {
  simdjson::ondemand::parser parser;
  for (auto _ : state) {
    simdjson::padded_string padded(kMissingTagErrorBody);
    simdjson::ondemand::document doc;
    std::string_view code;
    if (parser.iterate(padded).get(doc) || doc["errors"].at(0)["code"].get_string().get(code))
      state.SkipWithError("parse failed");
    benchmark::DoNotOptimize(registry_error_from_code(code));
  }
}

// ------------------------------------------------------------ nlohmann-json (DOM)
void BM_Nlohmann_Image(benchmark::State& state) {
  for (auto _ : state) {
    Extracted out;
    auto doc = nlohmann::json::parse(image_body(), nullptr, false);
    const auto& config = doc.at("config");
    out.blobs.emplace_back(*Digest::parse(config.at("digest").get_ref<const std::string&>()),
                           config.at("size").get<std::uint64_t>());
    for (const auto& layer : doc.at("layers"))
      out.blobs.emplace_back(*Digest::parse(layer.at("digest").get_ref<const std::string&>()),
                             layer.at("size").get<std::uint64_t>());
    benchmark::DoNotOptimize(out);
  }
}
void BM_Nlohmann_Index(benchmark::State& state) {
  for (auto _ : state) {
    Extracted out;
    auto doc = nlohmann::json::parse(index_body(), nullptr, false);
    for (const auto& entry : doc.at("manifests")) {
      const auto& platform = entry.at("platform");
      out.children.emplace_back(*Digest::parse(entry.at("digest").get_ref<const std::string&>()),
                                platform.at("os").get<std::string>() + "/" +
                                    platform.at("architecture").get<std::string>());
    }
    benchmark::DoNotOptimize(out);
  }
}
void BM_Nlohmann_Error(benchmark::State& state) {
  for (auto _ : state) {
    auto doc = nlohmann::json::parse(kMissingTagErrorBody, nullptr, false);
    benchmark::DoNotOptimize(registry_error_from_code(doc.at("errors").at(0).at("code").get_ref<const std::string&>()));
  }
}

BENCHMARK(BM_RapidJson_Image);
BENCHMARK(BM_Simdjson_Image);
BENCHMARK(BM_Nlohmann_Image);
BENCHMARK(BM_RapidJson_Index);
BENCHMARK(BM_Simdjson_Index);
BENCHMARK(BM_Nlohmann_Index);
BENCHMARK(BM_RapidJson_Error);
BENCHMARK(BM_Simdjson_Error);
BENCHMARK(BM_Nlohmann_Error);

}  // namespace
