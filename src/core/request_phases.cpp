#include "core/request_phases.h"

#include <chrono>

#include <fmt/format.h>

#include "core/client_family.h"
#include "core/headers.h"
#include "core/json.h"
#include "core/registry_error.h"
#include "core/route.h"

namespace regmeter {

std::string_view reason_phrase(int status) {
  switch (status) {
    case 400: return "Bad Request";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
  }
}

LocalReplyBytes local_reply_bytes(const LocalReply& reply, bool close_connection) {
  LocalReplyBytes bytes;
  bytes.body = fmt::format(R"({{"errors":[{{"code":{},"message":{}}}]}})", json_string(reply.code),
                           json_string(reply.message));
  bytes.body.push_back('\n');
  bytes.head = fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n"
      "Docker-Distribution-Api-Version: registry/2.0\r\n{}{}\r\n",
      reply.status, reason_phrase(reply.status), bytes.body.size(), reply.extra_headers,
      close_connection ? "Connection: close\r\n" : "");
  return bytes;
}

RejectReason head_refusal_reason(int status) {
  return status == 505   ? RejectReason::unsupported_version
         : status == 431 ? RejectReason::head_too_large
                         : RejectReason::malformed_head;
}

std::optional<LocalReply> on_request_head(RequestContext& request, const MessageHead& head,
                                          const RequestHeadInputs& inputs) {
  Exchange& record = request.record;
  record.method = method_from_string(head.method);
  if (const std::string* user_agent = head.find("User-Agent")) record.user_agent = *user_agent;
  record.client = classify_user_agent(record.user_agent);
  request.head_request = record.method == Method::head;
  if (head.method == "CONNECT")
    // Whatever follows is tunnel data we will not read.
    return LocalReply{405, "UNSUPPORTED", "CONNECT is not supported: this is a registry proxy", {}, true};
  std::string target = origin_form(head.target);
  if (target.empty()) return LocalReply{400, "UNSUPPORTED", "request target is neither origin-form nor absolute-form"};
  if (std::string_view why = ambiguous_path_reason(target); !why.empty())
    // Counted under handler="other": the path names no repository we could trust.
    return LocalReply{400, "NAME_INVALID", fmt::format("invalid repository name or reference: {}", why)};
  request.client_target = target;
  // Our upload-session token never reaches the registry.
  request.session_token = take_session_token(target);
  request.route = classify(record.method, target);
  record.handler = request.route.handler;
  record.repository = request.route.repository;
  const std::string* host = head.find("Host");
  request.client_host = host ? *host : inputs.listen->to_string();
  request.upstream_head = upstream_request_head(
      head, target,
      {inputs.client_address, inputs.client_scheme, inputs.trust_forwarded, request.client_host,
       {request.request_id_hex.data(), request.request_id_hex.size()}});
  return std::nullopt;
}

std::string upload_id_of(const MessageHead& response) {
  const std::string* location = response.find("Location");
  if (!location) return {};
  Route route = classify(Method::patch, origin_form(*location));
  return route.handler == Handler::blob_upload_chunk ? route.reference : std::string();
}

ResponseHeadPlan on_response_head(RequestContext& request, const MessageHead& response,
                                  const ResponseHeadInputs& inputs) {
  ResponseHeadPlan plan;
  ResponseContext context{inputs.upstream_authority, inputs.client_scheme, request.client_host, false};
  // Upload sessions: hand the client the session's token in the next
  // upload URL.
  const Route& route = request.route;
  request.session_step = session_step(route.handler, request.record.method, request.client_target, response.status);
  if (route.handler == Handler::blob_upload_chunk) request.session_id = route.reference;
  if (request.session_step.kind == SessionStep::Kind::opened) {
    plan.session_token = {request.started_unix_ns, request.record.request_body_bytes};
    if (std::string id = upload_id_of(response); !id.empty()) {
      context.location_token = &plan.session_token;
      request.session_id = std::move(id);
      plan.touched_upload_id = &request.session_id;
    }
  } else if (request.session_step.kind == SessionStep::Kind::continued && request.session_token) {
    plan.session_token = {request.session_token->started_unix_ns,
                          request.session_token->bytes + request.record.request_body_bytes};
    context.location_token = &plan.session_token;
    plan.touched_upload_id = &route.reference;
  }
  plan.close_after = inputs.close_after;
  if (!response.keep_alive) request.upstream_reusable = false;
  if (inputs.body_until_eof) {
    // The body ends when the upstream closes, so the client can only tell
    // where it ends by us closing too.
    request.upstream_reusable = false;
    plan.close_after = true;
  }
  // Answered before the request body was all sent: the rest of it cannot
  // be told apart from a next request, so this connection ends here.
  if (!request.request_done) plan.close_after = true;
  context.close_connection = plan.close_after;
  plan.client_head = client_response_head(response, context);
  return plan;
}

FinishPlan on_finish(const RequestContext& request, std::int64_t now_unix_ns) {
  FinishPlan plan;
  if (request.session_request_in_table) {
    // Idle from now on (an aborted PATCH too): the timeout counts from here.
    plan.leaves_session_table = true;
    bool answered = request.session_step.kind != SessionStep::Kind::none;  // its bytes are in the session's token
    plan.unanswered_bytes = answered ? 0 : request.record.request_body_bytes;
  }
  if (request.session_step.kind != SessionStep::Kind::closed) return plan;
  plan.session_closed = request.route.handler == Handler::blob_upload_chunk;
  plan.closed_session = observe_closed_session(request.route.handler, request.session_token, request.started_unix_ns,
                                               request.record.request_body_bytes, now_unix_ns);
  return plan;
}

AccessRecord access_record_of(const RequestContext& request, const MessageHead& head,
                              std::string_view client_address) {
  auto seconds = [](Clock::duration d) { return std::chrono::duration<double>(d).count(); };
  const Exchange& record = request.record;
  AccessRecord line;
  line.started_unix_ns = request.started_unix_ns;
  line.client = client_address;
  line.method = head.method.empty() ? method_name(record.method) : std::string_view(head.method);
  line.handler = handler_name(record.handler);
  line.repository = request.route.repository;
  line.reference = request.route.reference;
  line.status = record.status == 0 ? kClientClosedStatus : record.status;
  line.request_bytes = record.request_body_bytes;
  line.response_bytes = record.response_body_bytes;
  line.duration_s = seconds(record.finished - record.started);
  if (record.upstream_headers != Clock::time_point{}) line.upstream_header_s = seconds(record.upstream_headers - record.started);
  line.upload_session = request.session_id;
  if (request.session_step.kind == SessionStep::Kind::closed) line.session_outcome = outcome_name(request.session_step.outcome);
  line.user_agent = record.user_agent;
  line.client_family = client_family_name(record.client);
  if (record.status >= 400 && record.status <= 599) line.error = registry_error_name(record.error);
  return line;
}

}  // namespace regmeter
