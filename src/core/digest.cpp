#include "core/digest.h"

#include "core/ascii.h"

namespace regmeter {

namespace {

constexpr std::string_view kSha256Prefix = "sha256:";
constexpr std::string_view kSha512Prefix = "sha512:";

}  // namespace

std::optional<Digest> Digest::parse(std::string_view text) {
  Digest digest;
  std::string_view hex;
  if (text.size() == kSha256Prefix.size() + 64 && text.starts_with(kSha256Prefix)) {
    digest.algorithm_ = DigestAlgorithm::sha256;
    hex = text.substr(kSha256Prefix.size());
  } else if (text.size() == kSha512Prefix.size() + 128 && text.starts_with(kSha512Prefix)) {
    digest.algorithm_ = DigestAlgorithm::sha512;
    hex = text.substr(kSha512Prefix.size());
  } else {
    return std::nullopt;
  }
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    int high = lower_hex_digit_value(hex[i]);
    int low = lower_hex_digit_value(hex[i + 1]);
    if (high < 0 || low < 0) return std::nullopt;
    digest.bytes_[i / 2] = static_cast<std::uint8_t>(high << 4 | low);
  }
  return digest;
}

std::uint64_t Digest::fingerprint() const {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < 8; ++i) value = value << 8 | bytes_[i];
  // sha256 and sha512 digests of different content never need to match;
  // flipping the top bit keeps their fingerprints apart in practice.
  return algorithm_ == DigestAlgorithm::sha512 ? value ^ 0x8000000000000000ull : value;
}

std::string Digest::to_string() const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(algorithm_ == DigestAlgorithm::sha256 ? kSha256Prefix : kSha512Prefix);
  out.reserve(out.size() + 2 * size());
  for (std::size_t i = 0; i < size(); ++i) {
    out.push_back(kHex[bytes_[i] >> 4]);
    out.push_back(kHex[bytes_[i] & 15]);
  }
  return out;
}

}  // namespace regmeter
