// Test helpers shared by the issue-16 unit tests: digests that look like real
// ones (random in every byte, as hashes are) and manifest bodies.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace regmeter::testing {

// A valid sha256 digest string, different for each n in all its bytes.
inline std::string fake_digest(std::uint64_t n, bool sha512 = false) {
  std::uint64_t state = n;
  auto splitmix64 = [&state] {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  };
  std::string out = sha512 ? "sha512:" : "sha256:";
  for (int i = 0; i < (sha512 ? 8 : 4); ++i) {
    char word[17];
    std::snprintf(word, sizeof word, "%016llx", static_cast<unsigned long long>(splitmix64()));
    out += word;
  }
  return out;
}

struct FakeBlob {
  std::string digest;
  std::uint64_t size;
};

// An OCI image manifest as containerd and buildx write it.
inline std::string oci_image_manifest(const FakeBlob& config, const std::vector<FakeBlob>& layers) {
  std::string body = "{\n  \"schemaVersion\": 2,\n  \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\",\n"
                     "  \"config\": {\n    \"mediaType\": \"application/vnd.oci.image.config.v1+json\",\n"
                     "    \"digest\": \"" + config.digest + "\",\n    \"size\": " + std::to_string(config.size) +
                     "\n  },\n  \"layers\": [";
  for (std::size_t i = 0; i < layers.size(); ++i) {
    body += i ? ",\n" : "\n";
    body += "    {\n      \"mediaType\": \"application/vnd.oci.image.layer.v1.tar+gzip\",\n      \"digest\": \"" +
            layers[i].digest + "\",\n      \"size\": " + std::to_string(layers[i].size) + "\n    }";
  }
  body += "\n  ],\n  \"annotations\": {\n    \"org.opencontainers.image.created\": \"2025-11-02T10:00:00Z\"\n  }\n}\n";
  return body;
}

struct FakePlatform {
  std::string digest;
  std::uint64_t size;
  std::string os, architecture, variant;
};

// An OCI index as buildx writes it (platform manifests, maybe attestations).
inline std::string oci_index(const std::vector<FakePlatform>& children) {
  std::string body = "{\n  \"schemaVersion\": 2,\n  \"mediaType\": \"application/vnd.oci.image.index.v1+json\",\n"
                     "  \"manifests\": [";
  for (std::size_t i = 0; i < children.size(); ++i) {
    const auto& c = children[i];
    body += i ? ",\n" : "\n";
    body += "    {\n      \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\",\n      \"digest\": \"" +
            c.digest + "\",\n      \"size\": " + std::to_string(c.size) + ",\n      \"platform\": {\n"
            "        \"architecture\": \"" + c.architecture + "\",\n        \"os\": \"" + c.os + "\"";
    if (!c.variant.empty()) body += ",\n        \"variant\": \"" + c.variant + "\"";
    body += "\n      }\n    }";
  }
  body += "\n  ]\n}\n";
  return body;
}

inline std::vector<FakeBlob> fake_layers(std::size_t count, std::uint64_t seed) {
  std::vector<FakeBlob> layers;
  for (std::size_t i = 0; i < count; ++i) layers.push_back({fake_digest(seed + i), 1000 * (i + 1) + 7});
  return layers;
}

// The bodies the benchmarks measure: a 10-layer OCI image manifest (2.2 KB)
// and a 20-platform OCI index (5.3 KB), pretty-printed as buildx writes them.
inline const std::string& ten_layer_manifest() {
  static const std::string body = oci_image_manifest({fake_digest(1), 7023}, fake_layers(10, 100));
  return body;
}

inline const std::string& twenty_platform_index() {
  static const std::string body = [] {
    const char* architectures[] = {"amd64", "arm64", "arm", "ppc64le", "s390x", "386", "riscv64", "mips64le", "loong64",
                                   "arm"};
    std::vector<FakePlatform> children;
    for (int i = 0; i < 20; ++i)
      children.push_back({fake_digest(500 + i), 1051, i < 10 ? "linux" : "windows", architectures[i % 10],
                          i % 10 == 2 ? "v7" : ""});
    return oci_index(children);
  }();
  return body;
}

// distribution 2.8's answer for a tag that does not exist.
inline const std::string kMissingTagErrorBody =
    "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"manifest unknown\",\"detail\":{\"Tag\":\"latest\"}}]}\n";

}  // namespace regmeter::testing
