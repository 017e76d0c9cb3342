#include "net/request_identity.h"

namespace regmeter {

void identify_request(Exchange& record, std::array<char, kRequestIdChars>& hex, const MessageHead& request,
                      RequestIdGenerator& ids) {
  record.request_id = ids.next();
  hex = to_hex(record.request_id);
  record.trace_id = TraceId{};
  // A request with several traceparent fields is malformed per W3C: ignored.
  if (const std::string* traceparent = request.find("traceparent"))
    if (auto trace = parse_traceparent(*traceparent)) record.trace_id = *trace;
}

RequestIdFields::RequestIdFields(const Exchange& record, const std::array<char, kRequestIdChars>& hex,
                                 const MessageHead& request) {
  if (!record.request_id.empty()) request_id_ = std::string_view(hex.data(), hex.size());
  if (const std::string* client = request.find("X-Request-Id")) client_request_id_ = *client;
  if (!record.trace_id.empty()) {
    trace_hex_ = to_hex(record.trace_id);
    has_trace_ = true;
  }
}

void RequestIdFields::fill(AccessRecord& line) const {
  line.request_id = request_id_;
  line.client_request_id = client_request_id_;
  if (has_trace_) line.trace_id = std::string_view(trace_hex_.data(), trace_hex_.size());
}

}  // namespace regmeter
