// What a pull of a manifest fetches next: for an image manifest its config
// and layer blobs, for an index (manifest list) its child manifests, for a
// Docker schema1 manifest its fsLayers blobs. Parsed with RapidJSON's SAX
// reader: no DOM, limits checked as the tokens arrive, so hostile bodies
// (deep nesting, huge arrays, duplicate keys, wrong types) are refused after
// reading no more than they must. Pure: no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/digest.h"

namespace regmeter {

enum class ManifestKind : std::uint8_t { image, index, schema1 };

// A body larger than this is not parsed (distribution refuses manifests over
// 4 MiB too: registry/handlers/manifests.go maxManifestBodySize).
inline constexpr std::size_t kMaxManifestBytes = 4 << 20;
// More config + layers, or child manifests, or fsLayers than this: refused.
// Real images stay far below (overlay filesystems stop at 128 layers).
inline constexpr std::size_t kMaxManifestEntries = 1024;

struct BlobReference {
  Digest digest;
  std::optional<std::uint64_t> size;  // absent for schema1 fsLayers
};

struct Platform {
  std::string os;
  std::string architecture;
  std::string variant;
};

struct ChildManifest {
  Digest digest;
  std::uint64_t size = 0;
  std::optional<ManifestKind> kind;  // what the entry's mediaType names; nothing when absent or another type
  Platform platform;        // all empty when the entry has none (attestations often have unknown/unknown)
};

struct Manifest {
  ManifestKind kind = ManifestKind::image;
  std::optional<BlobReference> config;  // image manifests only
  std::vector<BlobReference> layers;    // image: layers in order; schema1: fsLayers blobSums as listed (may repeat)
  std::vector<ChildManifest> manifests; // index only
};

// The kind a media type names (parameters and case ignored), or nothing for
// anything else (application/json included).
std::optional<ManifestKind> manifest_kind_of_media_type(std::string_view media_type);

// `content_type` is the response's Content-Type (may be empty). The kind is
// the body's own `mediaType` when it has one, else the Content-Type's, else
// what the body's fields say; a body and a header that name different kinds
// are refused, as are unknown `mediaType`s, bodies over kMaxManifestBytes,
// invalid JSON, nesting deeper than 32, duplicate keys among the fields read,
// values of the wrong type, invalid digests (only sha256 and sha512, lower-case
// hex, are valid), negative or fractional sizes, missing digests or sizes,
// a body with both `layers` and `manifests`, and a wrong `schemaVersion`.
std::optional<Manifest> parse_manifest(std::string_view body, std::string_view content_type);

}  // namespace regmeter
