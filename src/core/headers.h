// Header policy between the two hops: what is hop-by-hop (RFC 9110 §7.6.1),
// what the proxy adds (X-Forwarded-*), and how an upstream Location that
// points at the upstream itself is turned back toward the proxy. Pure.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/http_head.h"
#include "core/upload_session.h"

namespace regmeter {

// The fields of one message that describe its connection and must not be
// forwarded: Connection, Keep-Alive, TE, Trailer, Upgrade, Proxy-*, and any
// field the message's own Connection fields name (except Content-Length,
// Transfer-Encoding and Host, which frame what we relay). The Connection
// options are collected once into a small hash set, so asking about every
// field of a head is linear, not fields × options (a hostile head of
// thousands of both took seconds). Holds views into `head`'s values.
class HopByHopFields {
 public:
  explicit HopByHopFields(const MessageHead& head);
  bool contains(std::string_view name) const;

 private:
  std::vector<std::string_view> slots_;  // the options, open addressing; empty: free
  std::uint64_t lengths_ = 0;            // bit min(length, 63) of each option
};

// One question about one field (builds a HopByHopFields: not for loops).
bool is_hop_by_hop(std::string_view name, const MessageHead& head);

struct ForwardContext {
  std::string_view client_address;  // peer IP, for X-Forwarded-For
  std::string_view proxy_scheme;    // "http" or "https", for X-Forwarded-Proto
  bool trust_forwarded = false;     // keep X-Forwarded-Proto/-Host a load balancer in front of us set
  // Sent as Host when the client sent none (HTTP/1.0): the request goes
  // upstream as HTTP/1.1, which requires one (RFC 9112 §3.2).
  std::string_view host_if_missing;
  // Sent as X-Request-Id when the client sent none (a client's own is
  // forwarded unchanged); empty: add nothing.
  std::string_view request_id_if_missing;
};

// The request head sent upstream: origin-form target, HTTP/1.1, end-to-end
// headers byte for byte (Host as the client sent it, or host_if_missing),
// X-Forwarded-For appended to, X-Forwarded-Proto/-Host set by us, X-Request-Id
// added when missing.
std::string upstream_request_head(const MessageHead& request, std::string_view origin_target,
                                  const ForwardContext& context);

struct ResponseContext {
  std::string_view upstream_authority;  // as configured, e.g. "127.0.0.1:5000"
  std::string_view proxy_scheme;        // scheme clients use to reach us
  std::string_view client_host;         // the Host the client sent (our address as it knows it)
  bool close_connection = false;        // tell the client we will close after this response
  const SessionToken* location_token = nullptr;  // carried in Location for upload sessions
};

// The response head sent to the client: status line, end-to-end headers
// byte for byte, Location rewritten only when it points at the upstream.
std::string client_response_head(const MessageHead& response, const ResponseContext& context);

// "http://upstream:5000/v2/x?_state=..." → "http://proxy:5080/v2/x?_state=..."
// when the authority is the upstream's; otherwise the value unchanged.
std::string rewrite_location(std::string_view location, const ResponseContext& context);

// Converts a request target to origin form ("/path?query"). Absolute-form
// targets lose their scheme and authority: we only ever talk to the
// configured upstream. Returns empty for targets that are neither.
std::string origin_form(std::string_view target);

}  // namespace regmeter
