#include "core/manifest.h"

#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <array>

#include "core/ascii.h"

namespace regmeter {

namespace {

struct MediaTypeKind {
  std::string_view media_type;
  ManifestKind kind;
};

constexpr std::array<MediaTypeKind, 6> kManifestMediaTypes = {{
    {"application/vnd.oci.image.manifest.v1+json", ManifestKind::image},
    {"application/vnd.docker.distribution.manifest.v2+json", ManifestKind::image},
    {"application/vnd.oci.image.index.v1+json", ManifestKind::index},
    {"application/vnd.docker.distribution.manifest.list.v2+json", ManifestKind::index},
    {"application/vnd.docker.distribution.manifest.v1+prettyjws", ManifestKind::schema1},
    {"application/vnd.docker.distribution.manifest.v1+json", ManifestKind::schema1},
}};

constexpr unsigned kMaxDepth = 32;
constexpr std::size_t kMaxMediaTypeBytes = 255;   // RFC 6838: 127 + "/" + 127
constexpr std::size_t kMaxPlatformFieldBytes = 128;

// Where in the document the parser is; `skip` is anything we do not read.
enum class Where : std::uint8_t { root, config, layers, layer, manifests, child, platform, fs_layers, fs_layer, skip };

// The fields we read. Each has a bit, to refuse duplicates within one object.
enum class Field : std::uint8_t {
  none,
  schema_version,
  media_type,
  config,
  layers,
  manifests,
  fs_layers,
  digest,
  size,
  platform,
  os,
  architecture,
  variant,
  blob_sum,
};

struct KeyField {
  Where where;
  std::string_view key;
  Field field;
};

constexpr std::array<KeyField, 18> kKeys = {{
    {Where::root, "schemaVersion", Field::schema_version},
    {Where::root, "mediaType", Field::media_type},
    {Where::root, "config", Field::config},
    {Where::root, "layers", Field::layers},
    {Where::root, "manifests", Field::manifests},
    {Where::root, "fsLayers", Field::fs_layers},
    {Where::config, "digest", Field::digest},
    {Where::config, "size", Field::size},
    {Where::layer, "digest", Field::digest},
    {Where::layer, "size", Field::size},
    {Where::child, "digest", Field::digest},
    {Where::child, "size", Field::size},
    {Where::child, "mediaType", Field::media_type},
    {Where::child, "platform", Field::platform},
    {Where::platform, "os", Field::os},
    {Where::platform, "architecture", Field::architecture},
    {Where::platform, "variant", Field::variant},
    {Where::fs_layer, "blobSum", Field::blob_sum},
}};

Field field_of(Where where, std::string_view key) {
  for (const auto& entry : kKeys)
    if (entry.where == where && entry.key == key) return entry.field;
  return Field::none;
}

struct Frame {
  Where where;
  std::uint32_t seen = 0;  // bit per Field read in this object
};

// SAX handler building a Manifest. Returning false stops RapidJSON at once,
// which is how every refusal works: nothing after the offending token is read.
class ManifestHandler : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, ManifestHandler> {
 public:
  explicit ManifestHandler(Manifest& out) : out_(out) {}

  // What the document said, for the checks after the parse.
  std::optional<std::uint64_t> schema_version;
  std::optional<ManifestKind> body_kind;
  bool body_media_type_unknown = false;
  bool has_config = false, has_layers = false, has_manifests = false, has_fs_layers = false;

  bool Null() {
    // Go decoders read null as "absent" for the optional strings; a null
    // digest, size or list is refused like any other wrong type.
    Field field = take_field();
    if (field == Field::none) return element_ok();
    return field == Field::media_type || field == Field::platform || field == Field::os ||
           field == Field::architecture || field == Field::variant;
  }
  bool Bool(bool) { return take_field() == Field::none && element_ok(); }
  bool Int(int) { return take_field() == Field::none && element_ok(); }      // negative
  bool Int64(std::int64_t) { return take_field() == Field::none && element_ok(); }
  bool Double(double) { return take_field() == Field::none && element_ok(); }  // fractions, exponents, > 2^64
  bool Uint(unsigned value) { return number(value); }
  bool Uint64(std::uint64_t value) { return number(value); }

  bool String(const char* text, rapidjson::SizeType length, bool) {
    std::string_view value(text, length);
    switch (take_field()) {
      case Field::none: return element_ok();
      case Field::media_type:
        if (value.size() > kMaxMediaTypeBytes) return false;
        if (top() == Where::root) {
          body_kind = manifest_kind_of_media_type(value);
          body_media_type_unknown = !body_kind;
        } else {
          child_.kind = manifest_kind_of_media_type(value);
        }
        return true;
      case Field::digest:
      case Field::blob_sum: {
        auto digest = Digest::parse(value);
        if (!digest) return false;
        if (top() == Where::child)
          child_.digest = *digest;
        else
          blob_.digest = *digest;
        return true;
      }
      case Field::os: return platform_field(child_.platform.os, value);
      case Field::architecture: return platform_field(child_.platform.architecture, value);
      case Field::variant: return platform_field(child_.platform.variant, value);
      default: return false;  // a string where a number, object or array belongs
    }
  }

  bool Key(const char* text, rapidjson::SizeType length, bool) {
    Frame& frame = stack_[depth_ - 1];
    if (frame.where == Where::skip) return true;
    Field field = field_of(frame.where, std::string_view(text, length));
    if (field != Field::none) {
      std::uint32_t bit = 1u << static_cast<unsigned>(field);
      if (frame.seen & bit) return false;  // duplicate key: which one would a client believe?
      frame.seen |= bit;
    }
    pending_ = field;
    return true;
  }

  bool StartObject() {
    if (depth_ == 0) return push(Where::root);
    Field field = take_field();
    switch (top()) {
      case Where::root:
        if (field == Field::config) {
          blob_ = {};
          has_config = true;
          return push(Where::config);
        }
        break;
      case Where::layers:
        blob_ = {};
        return entry_fits() && push(Where::layer);
      case Where::manifests:
        child_ = {};
        return entry_fits() && push(Where::child);
      case Where::fs_layers:
        blob_ = {};
        return entry_fits() && push(Where::fs_layer);
      case Where::child:
        if (field == Field::platform) return push(Where::platform);
        break;
      default: break;
    }
    return field == Field::none && push(Where::skip);
  }

  bool StartArray() {
    if (depth_ == 0) return false;  // a manifest is an object
    Field field = take_field();
    if (top() == Where::root) {
      switch (field) {
        case Field::layers: has_layers = true; return push(Where::layers);
        case Field::manifests: has_manifests = true; return push(Where::manifests);
        case Field::fs_layers: has_fs_layers = true; return push(Where::fs_layers);
        default: break;
      }
    }
    return field == Field::none && element_ok() && push(Where::skip);
  }

  bool EndObject(rapidjson::SizeType) {
    const Frame& frame = stack_[depth_ - 1];
    auto seen = [&](Field field) { return (frame.seen & (1u << static_cast<unsigned>(field))) != 0; };
    switch (frame.where) {
      case Where::config:
        if (!seen(Field::digest) || !seen(Field::size)) return false;
        out_.config = blob_;
        break;
      case Where::layer:
        if (!seen(Field::digest) || !seen(Field::size)) return false;
        out_.layers.push_back(blob_);
        break;
      case Where::fs_layer:
        if (!seen(Field::blob_sum)) return false;
        out_.layers.push_back(blob_);
        break;
      case Where::child:
        if (!seen(Field::digest) || !seen(Field::size)) return false;
        out_.manifests.push_back(std::move(child_));
        break;
      default: break;
    }
    --depth_;
    return true;
  }

  bool EndArray(rapidjson::SizeType) {
    --depth_;
    return true;
  }

 private:
  Where top() const { return stack_[depth_ - 1].where; }

  // The field the next value belongs to, consumed.
  Field take_field() {
    Field field = pending_;
    pending_ = Field::none;
    return field;
  }

  // A scalar or array where the value of no field we read is expected: fine,
  // unless it is the whole document or an element of layers/manifests/fsLayers
  // (those must be objects).
  bool element_ok() const {
    if (depth_ == 0) return false;
    Where where = top();
    return where != Where::layers && where != Where::manifests && where != Where::fs_layers;
  }

  bool entry_fits() const {
    return out_.layers.size() + out_.manifests.size() < kMaxManifestEntries;
  }

  bool push(Where where) {
    if (depth_ == kMaxDepth) return false;
    stack_[depth_++] = Frame{where};
    return true;
  }

  bool number(std::uint64_t value) {
    switch (take_field()) {
      case Field::none: return element_ok();
      case Field::schema_version: schema_version = value; return true;
      case Field::size:
        if (top() == Where::child)
          child_.size = value;
        else
          blob_.size = value;
        return true;
      default: return false;
    }
  }

  static bool platform_field(std::string& out, std::string_view value) {
    if (value.size() > kMaxPlatformFieldBytes) return false;
    out = value;
    return true;
  }

  Manifest& out_;
  std::array<Frame, kMaxDepth> stack_{};
  unsigned depth_ = 0;
  Field pending_ = Field::none;
  BlobReference blob_;   // the config, layer or fsLayer being read
  ChildManifest child_;  // the index entry being read
};

// The kind the fields name, for a body without a known media type.
std::optional<ManifestKind> kind_of_fields(const ManifestHandler& seen) {
  if (seen.has_manifests) return ManifestKind::index;
  if (seen.has_fs_layers) return ManifestKind::schema1;
  if (seen.has_config || seen.has_layers) return ManifestKind::image;
  return std::nullopt;
}

bool fields_fit(ManifestKind kind, const ManifestHandler& seen) {
  switch (kind) {
    case ManifestKind::image:
      return seen.schema_version == 2u && seen.has_config && seen.has_layers && !seen.has_manifests &&
             !seen.has_fs_layers;
    case ManifestKind::index:
      return seen.schema_version == 2u && seen.has_manifests && !seen.has_config && !seen.has_layers &&
             !seen.has_fs_layers;
    case ManifestKind::schema1:
      return seen.schema_version == 1u && seen.has_fs_layers && !seen.has_config && !seen.has_layers &&
             !seen.has_manifests;
  }
  return false;
}

}  // namespace

std::optional<ManifestKind> manifest_kind_of_media_type(std::string_view media_type) {
  for (const auto& known : kManifestMediaTypes)  // as registries write them: one memcmp
    if (media_type == known.media_type) return known.kind;
  media_type = ascii_trim(media_type.substr(0, media_type.find(';')));
  for (const auto& known : kManifestMediaTypes)
    if (ascii_iequals(media_type, known.media_type)) return known.kind;
  return std::nullopt;
}

std::optional<Manifest> parse_manifest(std::string_view body, std::string_view content_type) {
  if (body.size() > kMaxManifestBytes) return std::nullopt;
  Manifest manifest;
  ManifestHandler handler(manifest);
  rapidjson::MemoryStream stream(body.data(), body.size());
  rapidjson::Reader reader;
  if (!reader.Parse<rapidjson::kParseNoFlags>(stream, handler)) return std::nullopt;
  if (stream.Tell() != body.size()) return std::nullopt;  // stopped at a NUL byte, which reads as the end

  if (handler.body_media_type_unknown) return std::nullopt;
  std::optional<ManifestKind> header_kind = manifest_kind_of_media_type(content_type);
  if (handler.body_kind && header_kind && *handler.body_kind != *header_kind) return std::nullopt;
  std::optional<ManifestKind> kind = handler.body_kind ? handler.body_kind : header_kind;
  if (!kind) kind = kind_of_fields(handler);
  if (!kind || !fields_fit(*kind, handler)) return std::nullopt;
  manifest.kind = *kind;
  return manifest;
}

}  // namespace regmeter
