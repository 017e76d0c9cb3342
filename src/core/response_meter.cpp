#include "core/response_meter.h"



namespace regmeter {

ResponseMeter::ResponseMeter() = default;
ResponseMeter::~ResponseMeter() = default;

void ResponseMeter::reset() {
  status_ = 0;
  error_ = RegistryError::none;
  reading_error_ = false;
  collecting_manifest_ = false;
  // Not kept for the connection's life: 10 000 idle keep-alive connections
  // must not each hold the last index they relayed (one allocation per
  // manifest GET is nothing next to parsing it).
  std::string().swap(manifest_body_);
  content_type_.clear();
  content_digest_.clear();
  manifest_.reset();
}

void ResponseMeter::begin(Handler handler, Method method, const MessageHead& response) {
  reset();
  status_ = response.status;
  const std::string* encoding = response.find("Content-Encoding");
  if (error_body_readable(status_, method == Method::head, encoding ? std::string_view(*encoding) : std::string_view())) {
    if (!error_reader_)
      error_reader_ = std::make_unique<RegistryErrorReader>();
    else
      *error_reader_ = RegistryErrorReader{};
    reading_error_ = true;
  }
  if (handler == Handler::manifest && method == Method::get && status_ == 200) {
    // Too large to be a manifest distribution would serve: not collected at all.
    if (response.content_length && *response.content_length > kMaxManifestBytes) return;
    collecting_manifest_ = true;
    if (response.content_length) manifest_body_.reserve(static_cast<std::size_t>(*response.content_length));
    if (const std::string* type = response.find("Content-Type")) content_type_ = *type;
    if (const std::string* digest = response.find("Docker-Content-Digest")) content_digest_ = *digest;
  }
}

void ResponseMeter::local_answer(int status, std::string_view code, bool head_request) {
  reset();
  status_ = status;
  if (status >= 400 && !head_request) error_ = registry_error_from_code(code);
}

void ResponseMeter::payload(std::string_view bytes) {
  if (reading_error_ && error_reader_->wants_more()) error_reader_->feed(bytes);
  if (collecting_manifest_) {
    if (manifest_body_.size() + bytes.size() > kMaxManifestBytes) {
      collecting_manifest_ = false;  // no pull for it; the bytes still stream on
      std::string().swap(manifest_body_);
      return;
    }
    manifest_body_.append(bytes);
  }
}

void ResponseMeter::complete() {
  if (reading_error_) {
    error_ = error_reader_->finish();
    reading_error_ = false;
  }
  if (status_ == 429 && error_ == RegistryError::none) error_ = RegistryError::toomanyrequests;
  if (collecting_manifest_) {
    manifest_ = parse_manifest(manifest_body_, content_type_);
    collecting_manifest_ = false;
  }
}

std::optional<RateLimit> rate_limit_of(const MessageHead& response) {
  RateLimitReader reader;
  for (const auto& field : response.headers) reader.header(field.name, field.value);
  return reader.result();
}

std::string_view pull_client_address(const MessageHead& request, std::string_view peer, bool trust_forwarded) {
  if (!trust_forwarded) return peer;
  const std::string* forwarded = request.find("X-Forwarded-For");
  if (!forwarded) return peer;
  std::string_view last;
  for_each_list_element(*forwarded, [&](std::string_view element) { last = element; });
  return last.empty() ? peer : last;
}

bool counts_as_client_error(Method method, int status) {
  if (status >= 500 && status <= 599) return true;
  if (status < 400 || status > 499) return false;
  if (status == 401) return false;
  if (status == 404 && method == Method::head) return false;
  return true;
}

}  // namespace regmeter
