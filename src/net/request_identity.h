// Who a request is: regmeter's request id (in the access log, in exemplars,
// and sent upstream as X-Request-Id when the client sent none) and the trace
// id of a valid W3C traceparent.
//
// Our id is always regmeter's fixed-size one, even when the client sent its
// own X-Request-Id: that one is forwarded upstream unchanged and logged as
// client_request_id, but a string of any length fits neither the 48-byte
// exemplar record nor the 128-character exemplar label budget.
#pragma once

#include <array>

#include "core/exemplar.h"
#include "core/http_head.h"
#include "core/metrics.h"
#include "net/access_log.h"

namespace regmeter {

// Gives `record` the next id of this thread and the traceparent's trace id
// (empty when absent or malformed), and writes the id's text into `hex`.
void identify_request(Exchange& record, std::array<char, kRequestIdChars>& hex, const MessageHead& request,
                      RequestIdGenerator& ids);

// The access-log fields for the ids; holds the trace id's text while the
// line is written.
class RequestIdFields {
 public:
  RequestIdFields(const Exchange& record, const std::array<char, kRequestIdChars>& hex, const MessageHead& request);
  void fill(AccessRecord& line) const;

 private:
  std::string_view request_id_;
  std::string_view client_request_id_;
  std::array<char, kTraceIdChars> trace_hex_{};
  bool has_trace_ = false;
};

}  // namespace regmeter
