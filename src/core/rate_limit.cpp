#include "core/rate_limit.h"

#include <array>

#include "core/ascii.h"

namespace regmeter {

namespace {

// Larger numbers are not rate limits; refusing them keeps arithmetic safe.
constexpr std::size_t kMaxDigits = 15;

// One list item or dictionary member in the shape these headers use
// (RFC 8941 structured fields, the subset needed): a bare item, then
// `;key[=value]` parameters. Only the parameters we read are kept.
struct Item {
  enum class Kind { integer, string, token } kind = Kind::token;
  std::uint64_t integer = 0;
  std::string_view token;  // a token bare item, or a dictionary member's key
  std::optional<std::uint64_t> w, q, r;
};

class Cursor {
 public:
  explicit Cursor(std::string_view text) : text_(text) {}

  bool at_end() const { return pos_ == text_.size(); }
  void skip_ows() {
    while (pos_ < text_.size() && is_ows(text_[pos_])) ++pos_;
  }
  bool take(char c) {
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }

  std::optional<std::uint64_t> integer() {
    std::size_t start = pos_;
    std::uint64_t value = 0;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      value = value * 10 + static_cast<std::uint64_t>(text_[pos_] - '0');
      ++pos_;
      if (pos_ - start > kMaxDigits) return std::nullopt;
    }
    if (pos_ == start) return std::nullopt;
    return value;
  }

  // A key: lcalpha or "*", then lcalpha, digits, "_", "-", ".", "*". Tokens
  // as bare items are looser in RFC 8941; these headers never need more.
  std::optional<std::string_view> key() {
    std::size_t start = pos_;
    auto is_first = [](char c) { return (c >= 'a' && c <= 'z') || c == '*'; };
    auto is_rest = [&](char c) { return is_first(c) || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'; };
    if (pos_ >= text_.size() || !is_first(text_[pos_])) return std::nullopt;
    while (pos_ < text_.size() && is_rest(text_[pos_])) ++pos_;
    return text_.substr(start, pos_ - start);
  }

  bool quoted_string() {
    if (!take('"')) return false;
    while (pos_ < text_.size()) {
      char c = text_[pos_++];
      if (c == '"') return true;
      if (c == '\\') {
        if (pos_ >= text_.size() || (text_[pos_] != '"' && text_[pos_] != '\\')) return false;
        ++pos_;
      } else if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
        return false;
      }
    }
    return false;
  }

  // integer | "string" | key-shaped token
  bool bare_item(Item& item) {
    if (peek() >= '0' && peek() <= '9') {
      auto value = integer();
      if (!value) return false;
      item.kind = Item::Kind::integer;
      item.integer = *value;
      return true;
    }
    if (peek() == '"') {
      item.kind = Item::Kind::string;
      return quoted_string();
    }
    auto token = key();
    if (!token) return false;
    item.kind = Item::Kind::token;
    item.token = *token;
    return true;
  }

  // Spaces before ';' are not structured-field syntax, but harmless to allow.
  bool parameters(Item& item) {
    while (true) {
      skip_ows();
      if (!take(';')) return true;
      skip_ows();
      auto name = key();
      if (!name) return false;
      if (!take('=')) continue;  // a boolean parameter
      Item value;
      if (!bare_item(value)) return false;
      std::optional<std::uint64_t> number;
      if (value.kind == Item::Kind::integer) number = value.integer;
      if (*name == "w") item.w = number;
      if (*name == "q") item.q = number;
      if (*name == "r") item.r = number;
      if ((*name == "w" || *name == "q" || *name == "r") && !number) return false;
    }
  }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

constexpr std::size_t kMaxItems = 16;

// A comma-separated list of items (or, with `dictionary`, of key=item
// members), all of which must parse. Returns how many were read, 0 on garbage.
std::size_t parse_members(std::string_view text, bool dictionary, std::array<Item, kMaxItems>& items) {
  Cursor cursor(ascii_trim(text));
  std::size_t count = 0;
  while (true) {
    if (count == kMaxItems) return 0;
    Item& item = items[count];
    item = Item{};
    if (dictionary) {
      auto name = cursor.key();
      if (!name || !cursor.take('=')) return 0;
      item.token = *name;
      Item value;
      if (!cursor.bare_item(value)) return 0;
      item.kind = value.kind;
      item.integer = value.integer;
    } else if (!cursor.bare_item(item)) {
      return 0;
    }
    if (!cursor.parameters(item)) return 0;
    ++count;
    cursor.skip_ows();
    if (cursor.at_end()) return count;
    if (!cursor.take(',')) return 0;
    cursor.skip_ows();
  }
}

enum Rank : std::uint8_t { kLimitRemaining = 0, kRateLimit = 1, kPolicy = 2, kXRateLimit = 3 };

enum HeaderBit : std::uint8_t {
  kLimitBit = 1,
  kRemainingBit = 2,
  kRateLimitBit = 4,
  kPolicyBit = 8,
  kXLimitBit = 16,
  kXRemainingBit = 32,
};

}  // namespace

void RateLimitReader::offer(Value& field, std::optional<std::uint64_t> value, std::uint8_t rank) {
  if (value && rank < field.rank) field = Value{*value, rank};
}

void RateLimitReader::header(std::string_view name, std::string_view value) {
  struct Known {
    std::string_view name;
    HeaderBit bit;
  };
  static constexpr std::array<Known, 6> kKnown = {{
      {"RateLimit-Limit", kLimitBit},
      {"RateLimit-Remaining", kRemainingBit},
      {"RateLimit", kRateLimitBit},
      {"RateLimit-Policy", kPolicyBit},
      {"X-RateLimit-Limit", kXLimitBit},
      {"X-RateLimit-Remaining", kXRemainingBit},
  }};
  HeaderBit bit{};
  for (const auto& known : kKnown)
    if (ascii_iequals(name, known.name)) bit = known.bit;
  if (bit == HeaderBit{} || (seen_ & bit)) return;
  seen_ |= bit;

  std::array<Item, kMaxItems> items;
  switch (bit) {
    case kLimitBit:
    case kXLimitBit: {
      // "100;w=21600", or draft-03's "100, 100;w=60, 1000;w=3600": the first
      // item is the limit in force; the policy with that quota gives the window.
      std::size_t count = parse_members(value, false, items);
      if (count == 0 || items[0].kind != Item::Kind::integer) return;
      std::optional<std::uint64_t> window = items[0].w;
      for (std::size_t i = 1; i < count; ++i) {
        if (items[i].kind != Item::Kind::integer) return;
        if (!window && items[i].integer == items[0].integer) window = items[i].w;
      }
      std::uint8_t rank = bit == kLimitBit ? kLimitRemaining : kXRateLimit;
      offer(limit_, items[0].integer, rank);
      offer(window_, window, rank);
      break;
    }
    case kRemainingBit:
    case kXRemainingBit: {
      std::size_t count = parse_members(value, false, items);
      if (count != 1 || items[0].kind != Item::Kind::integer) return;
      std::uint8_t rank = bit == kRemainingBit ? kLimitRemaining : kXRateLimit;
      offer(remaining_, items[0].integer, rank);
      offer(window_, items[0].w, rank);
      break;
    }
    case kRateLimitBit: {
      if (ascii_trim(value).starts_with('"')) {
        // draft-08+: "policy";r=50;t=30 — the first policy's remaining quota
        if (parse_members(value, false, items) == 0 || !items[0].r) return;
        offer(remaining_, items[0].r, kRateLimit);
        break;
      }
      // draft-07: limit=100, remaining=50, reset=30
      std::size_t count = parse_members(value, true, items);
      if (count == 0) return;
      std::optional<std::uint64_t> limit, remaining;
      for (std::size_t i = 0; i < count; ++i) {
        bool known = items[i].token == "limit" || items[i].token == "remaining" || items[i].token == "reset";
        if (known && items[i].kind != Item::Kind::integer) return;
        if (items[i].token == "limit") limit = items[i].integer;
        if (items[i].token == "remaining") remaining = items[i].integer;
      }
      if (!limit && !remaining) return;
      offer(limit_, limit, kRateLimit);
      offer(remaining_, remaining, kRateLimit);
      break;
    }
    case kPolicyBit: {
      // draft-06/07: 100;w=3600   draft-08+: "default";q=100;w=3600
      if (parse_members(value, false, items) == 0) return;
      const Item& first = items[0];
      std::optional<std::uint64_t> quota = first.kind == Item::Kind::integer ? std::optional(first.integer) : first.q;
      if (first.kind == Item::Kind::token || !quota) return;
      offer(limit_, quota, kPolicy);
      offer(window_, first.w, kPolicy);
      break;
    }
    default: break;
  }
}

std::optional<RateLimit> RateLimitReader::result() const {
  RateLimit out;
  if (limit_.rank != kNone) out.limit = limit_.value;
  if (remaining_.rank != kNone) out.remaining = remaining_.value;
  if (window_.rank != kNone) out.window_seconds = window_.value;
  if (!out.limit && !out.remaining) return std::nullopt;  // a window alone says nothing
  return out;
}

}  // namespace regmeter
