#include "core/headers.h"

#include <algorithm>
#include <bit>
#include <cstdint>

#include <fmt/format.h>

#include "core/ascii.h"

namespace regmeter {

namespace {

bool starts_with_ci(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && ascii_iequals(text.substr(0, prefix.size()), prefix);
}

char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

// FNV-1a over the ASCII-lowered bytes: equal under iequals, equal hash.
std::size_t ihash(std::string_view text) {
  std::uint64_t h = 1469598103934665603ull;
  for (char c : text) h = (h ^ static_cast<unsigned char>(ascii_lower(c))) * 1099511628211ull;
  return static_cast<std::size_t>(h ^ (h >> 32));
}

std::uint64_t length_bit(std::size_t length) { return std::uint64_t{1} << std::min<std::size_t>(length, 63); }

void append_header(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

}  // namespace

HopByHopFields::HopByHopFields(const MessageHead& head) {
  std::vector<std::string_view> options;
  for (const auto& field : head.headers)
    if (ascii_iequals(field.name, "Connection"))
      for_each_list_element(field.value, [&options](std::string_view option) {
        if (!option.empty()) options.push_back(option);
      });
  if (options.empty()) return;
  // Open addressing, at most half full: a lookup is one hash and about one
  // comparison, whatever the number of options.
  slots_.resize(std::bit_ceil(options.size() * 2));
  const std::size_t mask = slots_.size() - 1;
  for (std::string_view option : options) {
    lengths_ |= length_bit(option.size());
    std::size_t at = ihash(option) & mask;
    while (!slots_[at].empty() && !ascii_iequals(slots_[at], option)) at = (at + 1) & mask;
    slots_[at] = option;
  }
}

bool HopByHopFields::contains(std::string_view name) const {
  if (ascii_iequals(name, "Connection") || ascii_iequals(name, "Keep-Alive") || ascii_iequals(name, "TE") ||
      ascii_iequals(name, "Trailer") || ascii_iequals(name, "Upgrade") || starts_with_ci(name, "Proxy-"))
    return true;
  // Most names are ruled out by their length alone.
  if ((lengths_ & length_bit(name.size())) == 0) return false;
  // Connection may name further hop-by-hop fields, but never the fields that
  // frame the body we relay unchanged (dropping those would let the body be
  // read as a next request) nor Host.
  if (ascii_iequals(name, "Content-Length") || ascii_iequals(name, "Transfer-Encoding") || ascii_iequals(name, "Host")) return false;
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t at = ihash(name) & mask; !slots_[at].empty(); at = (at + 1) & mask)
    if (ascii_iequals(slots_[at], name)) return true;
  return false;
}

bool is_hop_by_hop(std::string_view name, const MessageHead& head) { return HopByHopFields(head).contains(name); }

std::string upstream_request_head(const MessageHead& request, std::string_view origin_target,
                                  const ForwardContext& context) {
  std::string out;
  out.reserve(256 + request.target.size() + request.headers.size() * 48);
  out.append(request.method).append(" ").append(origin_target).append(" HTTP/1.1\r\n");
  std::string forwarded_for;
  const std::string* host = nullptr;
  bool client_proto = false, client_host = false, client_request_id = false;
  const HopByHopFields hop_by_hop(request);
  for (const auto& field : request.headers) {
    if (hop_by_hop.contains(field.name)) continue;
    if (ascii_iequals(field.name, "X-Forwarded-For")) {
      if (!forwarded_for.empty()) forwarded_for.append(", ");
      forwarded_for.append(field.value);
      continue;
    }
    // We are the edge unless told otherwise: what a client claims here is
    // not trusted. Behind a TLS-terminating balancer, its values are right.
    // RFC 7239 Forwarded: distribution prefers it to X-Forwarded-* when it
    // builds Location URLs, so a client's claim there is dropped the same way.
    if (ascii_iequals(field.name, "Forwarded") && !context.trust_forwarded) continue;
    bool is_proto = ascii_iequals(field.name, "X-Forwarded-Proto"), is_host = ascii_iequals(field.name, "X-Forwarded-Host");
    if (is_proto || is_host) {
      if (!context.trust_forwarded) continue;
      (is_proto ? client_proto : client_host) = true;
    }
    if (ascii_iequals(field.name, "Host") && !host) host = &field.value;
    if (ascii_iequals(field.name, "X-Request-Id")) client_request_id = true;
    append_header(out, field.name, field.value);
  }
  if (!host) append_header(out, "Host", context.host_if_missing);
  if (!forwarded_for.empty()) forwarded_for.append(", ");
  forwarded_for.append(context.client_address);
  append_header(out, "X-Forwarded-For", forwarded_for);
  if (!client_proto) append_header(out, "X-Forwarded-Proto", context.proxy_scheme);
  if (host && !client_host) append_header(out, "X-Forwarded-Host", *host);
  if (!client_request_id && !context.request_id_if_missing.empty())
    append_header(out, "X-Request-Id", context.request_id_if_missing);
  // An HTTP/1.0 client's message is still sent as HTTP/1.1 upstream, where
  // keep-alive is the default; nothing to add.
  out.append("\r\n");
  return out;
}

std::string rewrite_location(std::string_view location, const ResponseContext& context) {
  auto scheme_end = location.find("://");
  if (scheme_end == std::string_view::npos || context.client_host.empty()) return std::string(location);
  std::string_view scheme = location.substr(0, scheme_end);
  std::string_view rest = location.substr(scheme_end + 3);
  std::size_t authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  if (!ascii_iequals(scheme, "http") && !ascii_iequals(scheme, "https")) return std::string(location);
  if (!ascii_iequals(authority, context.upstream_authority)) return std::string(location);
  std::string_view tail = authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);
  return fmt::format("{}://{}{}", context.proxy_scheme, context.client_host, tail);
}

std::string client_response_head(const MessageHead& response, const ResponseContext& context) {
  std::string out;
  out.reserve(256 + response.headers.size() * 48);
  out.append("HTTP/1.1 ").append(fmt::format_int(response.status).c_str()).append(" ");
  out.append(response.reason).append("\r\n");
  const HopByHopFields hop_by_hop(response);
  for (const auto& field : response.headers) {
    if (hop_by_hop.contains(field.name)) continue;
    if (ascii_iequals(field.name, "Location")) {
      std::string location = rewrite_location(field.value, context);
      if (context.location_token) location = with_session_token(location, *context.location_token);
      append_header(out, field.name, location);
      continue;
    }
    append_header(out, field.name, field.value);
  }
  if (context.close_connection) append_header(out, "Connection", "close");
  out.append("\r\n");
  return out;
}

std::string origin_form(std::string_view target) {
  if (!target.empty() && target.front() == '/') return std::string(target);
  auto scheme_end = target.find("://");
  if (scheme_end == std::string_view::npos) return {};
  std::string_view scheme = target.substr(0, scheme_end);
  if (!ascii_iequals(scheme, "http") && !ascii_iequals(scheme, "https")) return {};
  std::string_view rest = target.substr(scheme_end + 3);
  auto path = rest.find_first_of("/?");
  if (path == std::string_view::npos) return "/";
  std::string origin;
  if (rest[path] == '?') origin.push_back('/');  // "http://host?q" means "/?q"
  origin.append(rest.substr(path));
  return origin;
}

}  // namespace regmeter
