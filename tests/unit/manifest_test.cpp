#include "core/manifest.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "metering_test_util.h"

namespace regmeter {
namespace {

using testing::fake_digest;
using testing::fake_layers;
using testing::FakeBlob;
using testing::oci_image_manifest;
using testing::oci_index;

constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
constexpr std::string_view kDockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
constexpr std::string_view kDockerList = "application/vnd.docker.distribution.manifest.list.v2+json";
constexpr std::string_view kSchema1 = "application/vnd.docker.distribution.manifest.v1+prettyjws";

const std::string kD1 = fake_digest(1), kD2 = fake_digest(2), kD3 = fake_digest(3), kD4 = fake_digest(4);

TEST(Digest, ParsesOnlyWellFormedSha256AndSha512) {
  auto d = Digest::parse(kD1);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->algorithm(), DigestAlgorithm::sha256);
  EXPECT_EQ(d->to_string(), kD1);
  auto long_one = Digest::parse(fake_digest(1, true));
  ASSERT_TRUE(long_one);
  EXPECT_EQ(long_one->algorithm(), DigestAlgorithm::sha512);
  EXPECT_EQ(long_one->to_string(), fake_digest(1, true));
  EXPECT_EQ(*Digest::parse(kD1), *d);
  EXPECT_NE(*Digest::parse(kD2), *d);

  const std::string hex64 = kD1.substr(7);
  for (const std::string& bad : std::vector<std::string>{
           "", "sha256:", "sha256:" + hex64.substr(1), "sha256:" + hex64 + "0", "SHA256:" + hex64,
           "sha256:" + std::string(63, 'a') + "A", "sha256:" + std::string(63, 'a') + "g", "sha384:" + hex64,
           "md5:" + hex64.substr(0, 32), "sha512:" + hex64, "sha256 " + hex64, " sha256:" + hex64, hex64,
           "sha256:" + std::string(62, 'a') + "\x00" "a", "sha256:" + std::string(64, '-')})
    EXPECT_FALSE(Digest::parse(bad)) << bad;
}

TEST(Digest, FingerprintsDifferByContentAndAlgorithm) {
  std::string zeros = "sha256:" + std::string(64, '0');
  std::string zeros512 = "sha512:" + std::string(128, '0');
  EXPECT_NE(Digest::parse(zeros)->fingerprint(), Digest::parse(zeros512)->fingerprint());
  EXPECT_NE(Digest::parse(kD1)->fingerprint(), Digest::parse(kD2)->fingerprint());
  EXPECT_EQ(Digest::parse("sha256:0123456789abcdef" + std::string(48, '0'))->fingerprint(), 0x0123456789abcdefull);
}

TEST(ManifestKind, FromMediaTypes) {
  struct Case {
    std::string_view media_type;
    std::optional<ManifestKind> kind;
  };
  for (const Case& c : std::vector<Case>{
           {kOciManifest, ManifestKind::image},
           {kDockerManifest, ManifestKind::image},
           {kOciIndex, ManifestKind::index},
           {kDockerList, ManifestKind::index},
           {kSchema1, ManifestKind::schema1},
           {"application/vnd.docker.distribution.manifest.v1+json", ManifestKind::schema1},
           {"Application/VND.OCI.Image.Manifest.v1+JSON; charset=utf-8", ManifestKind::image},
           {"  application/vnd.oci.image.index.v1+json ;x=y", ManifestKind::index},
           {"application/json", std::nullopt},
           {"application/vnd.oci.image.config.v1+json", std::nullopt},
           {"application/vnd.oci.image.manifest.v1+jsonx", std::nullopt},
           {"", std::nullopt},
       })
    EXPECT_EQ(manifest_kind_of_media_type(c.media_type), c.kind) << c.media_type;
}

TEST(ParseManifest, OciImageManifest) {
  auto layers = fake_layers(3, 100);
  auto m = parse_manifest(oci_image_manifest({kD1, 1469}, layers), kOciManifest);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->kind, ManifestKind::image);
  ASSERT_TRUE(m->config);
  EXPECT_EQ(m->config->digest.to_string(), kD1);
  EXPECT_EQ(m->config->size, 1469u);
  ASSERT_EQ(m->layers.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(m->layers[i].digest.to_string(), layers[i].digest);
    EXPECT_EQ(m->layers[i].size, layers[i].size);
  }
  EXPECT_TRUE(m->manifests.empty());
}

TEST(ParseManifest, DockerSchema2ManifestAsDistributionServesIt) {
  std::string body = R"({
   "schemaVersion": 2,
   "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
   "config": {
      "mediaType": "application/vnd.docker.container.image.v1+json",
      "size": 1457,
      "digest": ")" + kD1 + R"("
   },
   "layers": [
      {
         "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
         "size": 29534055,
         "digest": ")" + kD2 + R"("
      },
      {
         "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
         "size": 4128,
         "digest": ")" + kD3 + R"(",
         "urls": ["https://mcr.microsoft.com/v2/x/blobs/)" + kD3 + R"("]
      }
   ]
})";
  auto m = parse_manifest(body, kDockerManifest);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->kind, ManifestKind::image);
  EXPECT_EQ(m->config->digest.to_string(), kD1);
  ASSERT_EQ(m->layers.size(), 2u);
  EXPECT_EQ(m->layers[0].size, 29534055u);
  EXPECT_EQ(m->layers[1].digest.to_string(), kD3);
}

TEST(ParseManifest, OciIndexWithAttestations) {
  // buildx: platform manifests plus attestation manifests (unknown/unknown).
  std::string body = R"({
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.index.v1+json",
  "manifests": [
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": ")" + kD1 + R"(", "size": 1051,
     "platform": {"architecture": "amd64", "os": "linux"}},
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": ")" + kD2 + R"(", "size": 1051,
     "platform": {"architecture": "arm64", "os": "linux", "variant": "v8", "os.features": ["x"], "features": []}},
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": ")" + kD3 + R"(", "size": 566,
     "annotations": {"vnd.docker.reference.digest": ")" + kD1 + R"(", "vnd.docker.reference.type": "attestation-manifest"},
     "platform": {"architecture": "unknown", "os": "unknown"}}
  ],
  "annotations": {"org.opencontainers.image.created": "2025-01-01T00:00:00Z"}
})";
  auto m = parse_manifest(body, kOciIndex);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->kind, ManifestKind::index);
  EXPECT_FALSE(m->config);
  EXPECT_TRUE(m->layers.empty());
  ASSERT_EQ(m->manifests.size(), 3u);
  EXPECT_EQ(m->manifests[0].digest.to_string(), kD1);
  EXPECT_EQ(m->manifests[0].size, 1051u);
  EXPECT_EQ(m->manifests[0].kind, ManifestKind::image);
  EXPECT_EQ(m->manifests[0].platform.os, "linux");
  EXPECT_EQ(m->manifests[0].platform.architecture, "amd64");
  EXPECT_EQ(m->manifests[0].platform.variant, "");
  EXPECT_EQ(m->manifests[1].platform.variant, "v8");
  EXPECT_EQ(m->manifests[2].platform.os, "unknown");
}

TEST(ParseManifest, DockerManifestListWithoutContentType) {
  std::string body = R"({"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json",)"
                     R"("manifests":[{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":528,)"
                     R"("digest":")" + kD1 + R"(","platform":{"architecture":"arm","os":"linux","variant":"v7"}}]})";
  auto m = parse_manifest(body, "");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->kind, ManifestKind::index);
  ASSERT_EQ(m->manifests.size(), 1u);
  EXPECT_EQ(m->manifests[0].platform.variant, "v7");
  // Both headers name an index: fine.
  EXPECT_TRUE(parse_manifest(body, kOciIndex));
}

TEST(ParseManifest, Schema1) {
  std::string empty_layer = fake_digest(9);
  std::string body = R"({
   "schemaVersion": 1,
   "name": "library/hello",
   "tag": "latest",
   "architecture": "amd64",
   "fsLayers": [
      {"blobSum": ")" + empty_layer + R"("},
      {"blobSum": ")" + kD2 + R"("},
      {"blobSum": ")" + empty_layer + R"("}
   ],
   "history": [{"v1Compatibility": "{\"id\":\"e45a5af57b00\",\"container_config\":{\"Cmd\":[\"/bin/sh\"]}}"}],
   "signatures": [{"header": {"jwk": {"crv": "P-256", "kty": "EC", "x": "a", "y": "b"}, "alg": "ES256"},
                   "signature": "xyz", "protected": "abc"}]
})";
  auto m = parse_manifest(body, kSchema1);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->kind, ManifestKind::schema1);
  EXPECT_FALSE(m->config);
  ASSERT_EQ(m->layers.size(), 3u);  // as listed, repeats included
  EXPECT_EQ(m->layers[0].digest.to_string(), empty_layer);
  EXPECT_EQ(m->layers[1].digest.to_string(), kD2);
  EXPECT_FALSE(m->layers[1].size);
}

TEST(ParseManifest, KindFromHeaderOrFieldsWhenTheBodyHasNoMediaType) {
  std::string image = R"({"schemaVersion":2,"config":{"digest":")" + kD1 + R"(","size":2},"layers":[]})";
  for (std::string_view header : {kOciManifest, kDockerManifest, std::string_view("application/json"),
                                  std::string_view("")}) {
    auto m = parse_manifest(image, header);
    ASSERT_TRUE(m) << header;
    EXPECT_EQ(m->kind, ManifestKind::image);
    EXPECT_TRUE(m->layers.empty());
  }
  EXPECT_FALSE(parse_manifest(image, kOciIndex));  // the header says index: the fields do not fit
  std::string index = R"({"schemaVersion":2,"manifests":[]})";
  ASSERT_TRUE(parse_manifest(index, ""));
  EXPECT_EQ(parse_manifest(index, "")->kind, ManifestKind::index);
}

TEST(ParseManifest, HelmChartArtifactIsAnImage) {
  std::string body = R"({"schemaVersion":2,"config":{"mediaType":"application/vnd.cncf.helm.config.v1+json",)"
                     R"("digest":")" + kD1 + R"(","size":117},"layers":[{"mediaType":)"
                     R"("application/vnd.cncf.helm.chart.content.v1.tar+gzip","digest":")" + kD2 +
                     R"(","size":3719}],"annotations":{"org.opencontainers.image.title":"chart"},)"
                     R"("artifactType":"application/vnd.cncf.helm.config.v1+json","subject":{"mediaType":"x",)"
                     R"("digest":")" + kD3 + R"(","size":1}})";
  auto m = parse_manifest(body, kOciManifest);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->layers.size(), 1u);
}

TEST(ParseManifest, NullOptionalFieldsAndDuplicateUnreadKeys) {
  std::string body = R"({"schemaVersion":2,"mediaType":null,"manifests":[{"digest":")" + kD1 +
                     R"(","size":1,"mediaType":null,"platform":{"os":"linux","architecture":"amd64","variant":null}}],)"
                     R"("annotations":{"a":"1"},"annotations":{"a":"2"}})";
  auto m = parse_manifest(body, kOciIndex);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->manifests[0].platform.variant, "");
}

TEST(ParseManifest, Sha512Digests) {
  auto m = parse_manifest(oci_image_manifest({fake_digest(1, true), 5}, {{fake_digest(2, true), 6}}), kOciManifest);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->config->digest.algorithm(), DigestAlgorithm::sha512);
}

struct RefusedCase {
  std::string name;
  std::string body;
  std::string_view content_type;
};

std::string image_with_layer(std::string_view layer_json) {
  return R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":")" +
         kD1 + R"(","size":2},"layers":[)" + std::string(layer_json) + "]}";
}

std::string layer(std::string_view digest_json, std::string_view size_json) {
  return "{\"digest\":" + std::string(digest_json) + ",\"size\":" + std::string(size_json) + "}";
}

TEST(ParseManifest, RefusesHostileAndMalformedBodies) {
  const std::string d = "\"" + kD2 + "\"";
  const std::string valid_layer = layer(d, "5");
  ASSERT_TRUE(parse_manifest(image_with_layer(valid_layer), kOciManifest));  // the baseline the cases break
  const std::string nested = std::string(40, '[') + std::string(40, ']');
  std::vector<RefusedCase> cases = {
      {"empty", "", kOciManifest},
      {"not JSON", "hello", kOciManifest},
      {"root array", "[" + image_with_layer(valid_layer) + "]", kOciManifest},
      {"root null", "null", kOciManifest},
      {"trailing garbage", image_with_layer(valid_layer) + "x", kOciManifest},
      {"two documents", image_with_layer(valid_layer) + "{}", kOciManifest},
      {"trailing NUL", image_with_layer(valid_layer) + std::string(1, '\0'), kOciManifest},
      {"NUL after the document", image_with_layer(valid_layer) + std::string("\0{}", 3), kOciManifest},
      {"cut off", image_with_layer(valid_layer).substr(0, 60), kOciManifest},
      {"header and body disagree", image_with_layer(valid_layer), kOciIndex},
      {"unknown body media type",
       R"({"schemaVersion":2,"mediaType":"application/vnd.foo","config":{"digest":)" + d + R"(,"size":1},"layers":[]})",
       kOciManifest},
      {"media type not a string",
       R"({"schemaVersion":2,"mediaType":7,"config":{"digest":)" + d + R"(,"size":1},"layers":[]})", kOciManifest},
      {"no schemaVersion", R"({"config":{"digest":)" + d + R"(,"size":1},"layers":[]})", kOciManifest},
      {"schemaVersion 1 for an image", R"({"schemaVersion":1,"config":{"digest":)" + d + R"(,"size":1},"layers":[]})",
       kOciManifest},
      {"schemaVersion as a string",
       R"({"schemaVersion":"2","config":{"digest":)" + d + R"(,"size":1},"layers":[]})", kOciManifest},
      {"no config", R"({"schemaVersion":2,"layers":[]})", kOciManifest},
      {"no layers", R"({"schemaVersion":2,"config":{"digest":)" + d + R"(,"size":1}})", kOciManifest},
      {"layers and manifests",
       R"({"schemaVersion":2,"config":{"digest":)" + d + R"(,"size":1},"layers":[],"manifests":[]})", ""},
      {"index with layers", R"({"schemaVersion":2,"manifests":[],"layers":[]})", kOciIndex},
      {"neither", R"({"schemaVersion":2})", ""},
      {"uppercase hex", image_with_layer(layer("\"sha256:" + std::string(64, 'A') + "\"", "5")), kOciManifest},
      {"short digest", image_with_layer(layer("\"sha256:abc\"", "5")), kOciManifest},
      {"other algorithm", image_with_layer(layer("\"sha384:" + std::string(96, 'a') + "\"", "5")), kOciManifest},
      {"digest not a string", image_with_layer(layer("12", "5")), kOciManifest},
      {"no digest", image_with_layer(R"({"size":5})"), kOciManifest},
      {"no size", image_with_layer("{\"digest\":" + d + "}"), kOciManifest},
      {"negative size", image_with_layer(layer(d, "-5")), kOciManifest},
      {"fractional size", image_with_layer(layer(d, "1.5")), kOciManifest},
      {"exponent size", image_with_layer(layer(d, "1e3")), kOciManifest},
      {"size as a string", image_with_layer(layer(d, "\"5\"")), kOciManifest},
      {"size too big", image_with_layer(layer(d, "18446744073709551616")), kOciManifest},
      {"size null", image_with_layer(layer(d, "null")), kOciManifest},
      {"duplicate digest", image_with_layer("{\"digest\":" + d + ",\"digest\":" + d + ",\"size\":5}"), kOciManifest},
      {"duplicate layers",
       R"({"schemaVersion":2,"config":{"digest":)" + d + R"(,"size":1},"layers":[],"layers":[]})", kOciManifest},
      {"duplicate mediaType",
       R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","mediaType":)"
       R"("application/vnd.oci.image.index.v1+json","manifests":[]})", ""},
      {"duplicate config",
       R"({"schemaVersion":2,"config":{"digest":)" + d + R"(,"size":1},"config":{"digest":)" + d +
           R"(,"size":1},"layers":[]})", kOciManifest},
      {"layers is an object", R"({"schemaVersion":2,"config":{"digest":)" + d + R"(,"size":1},"layers":{}})",
       kOciManifest},
      {"config is an array", R"({"schemaVersion":2,"config":[],"layers":[]})", kOciManifest},
      {"config is null", R"({"schemaVersion":2,"config":null,"layers":[]})", kOciManifest},
      {"layer is a string", image_with_layer(d), kOciManifest},
      {"layer is an array", image_with_layer("[]"), kOciManifest},
      {"layer is null", image_with_layer("null"), kOciManifest},
      {"manifest entry is a number", R"({"schemaVersion":2,"manifests":[1]})", kOciIndex},
      {"platform is a string",
       R"({"schemaVersion":2,"manifests":[{"digest":)" + d + R"(,"size":1,"platform":"linux"}]})", kOciIndex},
      {"os is a number",
       R"({"schemaVersion":2,"manifests":[{"digest":)" + d + R"(,"size":1,"platform":{"os":1}}]})", kOciIndex},
      {"huge platform string",
       R"({"schemaVersion":2,"manifests":[{"digest":)" + d + R"(,"size":1,"platform":{"os":")" +
           std::string(200, 'x') + R"("}}]})", kOciIndex},
      {"blobSum missing", R"({"schemaVersion":1,"fsLayers":[{}]})", kSchema1},
      {"schema1 with version 2", R"({"schemaVersion":2,"fsLayers":[{"blobSum":)" + d + "}]}", kSchema1},
      {"deep nesting in an unread field",
       R"({"schemaVersion":2,"annotations":)" + nested + R"(,"config":{"digest":)" + d + R"(,"size":1},"layers":[]})",
       kOciManifest},
      {"deep nesting at the root", std::string(100000, '[') + std::string(100000, ']'), kOciManifest},
  };
  for (const auto& c : cases) EXPECT_FALSE(parse_manifest(c.body, c.content_type)) << c.name;
}

TEST(ParseManifest, NestingUpToTheLimitIsRead) {
  // The root object is level 1; 31 arrays inside it reach the limit of 32.
  auto with_nesting = [](std::size_t arrays) {
    return R"({"schemaVersion":2,"annotations":)" + std::string(arrays, '[') + std::string(arrays, ']') +
           R"(,"config":{"digest":")" + kD1 + R"(","size":1},"layers":[]})";
  };
  EXPECT_TRUE(parse_manifest(with_nesting(31), kOciManifest));
  EXPECT_FALSE(parse_manifest(with_nesting(32), kOciManifest));
}

TEST(ParseManifest, EntryAndSizeLimits) {
  auto at_limit = oci_image_manifest({kD1, 1}, fake_layers(kMaxManifestEntries, 1000));
  auto m = parse_manifest(at_limit, kOciManifest);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->layers.size(), kMaxManifestEntries);
  EXPECT_FALSE(parse_manifest(oci_image_manifest({kD1, 1}, fake_layers(kMaxManifestEntries + 1, 1000)), kOciManifest));
  // An index with more children than the limit, with a valid rest.
  std::vector<testing::FakePlatform> children;
  for (std::size_t i = 0; i <= kMaxManifestEntries; ++i) children.push_back({fake_digest(i), 500, "linux", "amd64", ""});
  EXPECT_FALSE(parse_manifest(oci_index(children), kOciIndex));
  children.pop_back();
  EXPECT_TRUE(parse_manifest(oci_index(children), kOciIndex));

  // Body size: whitespace padding up to the cap is fine, one byte over is not.
  std::string small = oci_image_manifest({kD1, 1}, fake_layers(2, 10));
  std::string padded = small + std::string(kMaxManifestBytes - small.size(), ' ');
  EXPECT_TRUE(parse_manifest(padded, kOciManifest));
  padded.push_back(' ');
  EXPECT_FALSE(parse_manifest(padded, kOciManifest));
}

// Random damage to real manifests: never a crash (the ASan build runs this
// too), and anything accepted is still within the limits with valid digests.
TEST(ParseManifest, SurvivesRandomDamage) {
  std::mt19937_64 random(16);
  std::vector<std::string> seeds = {oci_image_manifest({kD1, 10}, fake_layers(10, 50)),
                                    oci_index({{kD1, 1, "linux", "amd64", ""}, {kD2, 2, "linux", "arm64", "v8"}})};
  std::size_t accepted = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string body = seeds[round % seeds.size()];
    std::size_t edits = 1 + random() % 4;
    for (std::size_t e = 0; e < edits; ++e) {
      std::size_t at = random() % body.size();
      switch (random() % 4) {
        case 0: body[at] = static_cast<char>(random() & 0xff); break;
        case 1: body.erase(at, 1 + random() % 8); break;
        case 2: body.insert(at, std::string(1 + random() % 4, "{}[]\",:0\\"[random() % 9])); break;
        default: body.resize(at); break;
      }
      if (body.empty()) body.push_back('{');  // (push_back: GCC 12's -Wrestrict misfires on = "{")
    }
    auto m = parse_manifest(body, round % 3 ? kOciManifest : "");
    if (!m) continue;
    ++accepted;
    ASSERT_LE(m->layers.size() + m->manifests.size(), kMaxManifestEntries);
    for (const auto& l : m->layers) ASSERT_TRUE(Digest::parse(l.digest.to_string()));
  }
  // Some damage lands in whitespace or in unread strings: those still parse.
  EXPECT_GT(accepted, 0u);
}

}  // namespace
}  // namespace regmeter
