// What the proxy reads from an exchange besides its framing, for metering
// (issue 16): the OCI error code of an error body, a manifest's content for
// pull sessions, the upstream's rate budget from a response head, the client
// address a pull is keyed by. The bodies are looked at as they stream to the
// client (a PayloadObserver on the response parser): never held back, only
// error bodies (first few KiB) and manifest GET bodies (up to
// kMaxManifestBytes) are copied aside. Pure: no I/O.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/http_head.h"
#include "core/manifest.h"
#include "core/rate_limit.h"
#include "core/registry_error.h"
#include "core/route.h"

namespace regmeter {

class ResponseMeter final : public PayloadObserver {
 public:
  ResponseMeter();
  ~ResponseMeter();
  ResponseMeter(const ResponseMeter&) = delete;
  ResponseMeter& operator=(const ResponseMeter&) = delete;

  // The final response head arrived from the upstream: decides which body
  // bytes are worth looking at.
  void begin(Handler handler, Method method, const MessageHead& response);
  // An answer made here (502 UNAVAILABLE, 400 NAME_INVALID ...): its code is
  // known without reading it; a HEAD answer has no body, so `none`.
  void local_answer(int status, std::string_view code, bool head_request);
  // Whether any body byte is worth showing it: false for the bodies that
  // make up nearly all bytes (blobs), which then cost nothing here.
  bool wants_payload() const { return reading_error_ || collecting_manifest_; }
  void payload(std::string_view bytes) override;
  // The body ended complete (a cut-off body never calls this: its error
  // stays `none` and its manifest unparsed).
  void complete();
  // Ready for the next exchange on the connection.
  void reset();

  // After complete(): the error code (`none` for a status under 400, or no
  // parseable body; a body-less 429 counts as TOOMANYREQUESTS).
  RegistryError error() const { return error_; }
  // After complete(): the manifest a manifest GET answered 200 carried, when
  // it parsed and fit kMaxManifestBytes.
  const std::optional<Manifest>& manifest() const { return manifest_; }
  // The manifest answer's Docker-Content-Digest (empty when none).
  std::string_view content_digest() const { return content_digest_; }

 private:
  int status_ = 0;
  RegistryError error_ = RegistryError::none;
  std::unique_ptr<RegistryErrorReader> error_reader_;  // error answers only: 4 KiB, kept for reuse
  bool reading_error_ = false;
  bool collecting_manifest_ = false;
  std::string manifest_body_;
  std::string content_type_;
  std::string content_digest_;
  std::optional<Manifest> manifest_;
};

// The rate budget a response head announces, if any.
std::optional<RateLimit> rate_limit_of(const MessageHead& response);

// The client address pulls are keyed by: the peer's, or with
// --trust-forwarded-headers the last X-Forwarded-For entry (the address the
// load balancer in front of us saw; earlier entries are the client's to
// forge). Falls back to the peer when the header is absent or empty.
std::string_view pull_client_address(const MessageHead& request, std::string_view peer, bool trust_forwarded);

// Whether a finished request counts in regmeter_client_errors_total: a 5xx,
// or a 4xx other than the two a healthy client meets every day — 401 (the
// token handshake asks without a token first) and 404 to a HEAD (existence
// checks: a push asks for every blob before uploading it). Status 0 (the
// client went away before an answer) is not a registry error either.
bool counts_as_client_error(Method method, int status);

}  // namespace regmeter
