// One finished request as the metrics see it: the plain record the data path
// fills and hands to its thread's MetricsShard (core/metrics.h), and that
// the per-family counters beside it (core/metering_counters.h) read. Apart
// from metrics.h so those counters need not include the shard that owns them.
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

#include "core/client_family.h"
#include "core/exemplar.h"
#include "core/registry_error.h"
#include "core/route.h"

namespace regmeter {

using Clock = std::chrono::steady_clock;

// Everything the metrics need to know about one finished request.
struct Exchange {
  Handler handler = Handler::other;
  Method method = Method::other;
  int status = 0;                        // final status sent to the client; 0 if none was sent
  std::uint64_t request_body_bytes = 0;  // body bytes actually received from the client
  std::uint64_t response_body_bytes = 0; // body bytes actually handed to the client
  Clock::time_point started;             // first byte of the request head
  Clock::time_point finished;            // last byte of the response written to the client
  bool reached_upstream = false;         // false for locally generated answers (502, 400, ...)

  // For regmeter_* metrics. Time points left at their default (epoch) mean
  // "did not happen".
  std::string_view repository;           // the route's repository; empty when none
  Clock::time_point upstream_headers;    // the final response head arrived from upstream
  Clock::time_point request_body_start;  // request head parsed: the body may follow
  Clock::time_point request_body_end;    // last request body byte moved toward the upstream
  Clock::time_point response_body_start; // response head queued for the client

  // For exemplars: who this request was (request_id also in its access-log
  // line), and the wall clock when it finished. No exemplar when unset.
  RequestId request_id;
  TraceId trace_id;                      // from a valid W3C traceparent; empty otherwise
  std::int64_t finished_unix_ns = 0;
  bool needed_upstream_connection = false;  // went looking for one (pooled, new or queued)
  Clock::duration upstream_queue_wait{};    // of which waiting in the --upstream-max-connections queue
  // Metering depth II (issue 16).
  ClientFamily client = ClientFamily::other;  // from the request's User-Agent
  std::string_view user_agent;                // that header (looked up once); empty when none
  RegistryError error = RegistryError::none;  // the error body's code (4xx/5xx answers)
};

// The `code` label for an Exchange with status 0 (the client went away before
// any response head was sent). Distribution never sees such requests; nginx's
// "client closed request" keeps them in the 4xx class, so code=~"5.." alerts
// stay about the registry, while every request is still counted and timed.
inline constexpr int kClientClosedStatus = 499;

}  // namespace regmeter
