// Content digests as OCI manifests and blob URLs carry them
// ("sha256:" + 64 hex, "sha512:" + 128 hex), held as fixed-size binary values:
// no allocation, cheap to compare, and already uniformly distributed (they
// are hashes), so a prefix of the bytes is a good table key. Pure: no I/O.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace regmeter {

enum class DigestAlgorithm : std::uint8_t { sha256, sha512 };

class Digest {
 public:
  // Accepts exactly "sha256:" + 64 or "sha512:" + 128 lower-case hex digits,
  // as the OCI image spec registers them; anything else (upper case, other
  // algorithms, wrong length) is nothing.
  static std::optional<Digest> parse(std::string_view text);

  DigestAlgorithm algorithm() const { return algorithm_; }
  std::size_t size() const { return algorithm_ == DigestAlgorithm::sha256 ? 32 : 64; }
  const std::uint8_t* bytes() const { return bytes_.data(); }

  // The first 8 bytes, with the algorithm mixed in: enough to tell apart the
  // few hundred digests a pull lists (a collision needs a 64-bit preimage).
  std::uint64_t fingerprint() const;

  std::string to_string() const;

  friend bool operator==(const Digest& a, const Digest& b) = default;

 private:
  DigestAlgorithm algorithm_ = DigestAlgorithm::sha256;
  std::array<std::uint8_t, 64> bytes_{};  // sha256 uses the first 32
};

}  // namespace regmeter
