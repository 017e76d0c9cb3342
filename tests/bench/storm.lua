-- wrk script of the storm rows of tests/bench/run.sh: `wrk --latency` prints
-- p50 and p99 but never p99.9, and its error counts in a shape that changes
-- with what happened. This done() hook prints every figure the table needs as
-- one parseable line. It defines no request/response hook, so wrk stays on
-- its fast path (the script costs nothing per request).
function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    "storm requests=%d duration_us=%d p50_us=%d p99_us=%d p999_us=%d max_us=%d " ..
    "connect_errors=%d read_errors=%d write_errors=%d timeout_errors=%d status_errors=%d\n",
    summary.requests, summary.duration,
    math.floor(latency:percentile(50)), math.floor(latency:percentile(99)),
    math.floor(latency:percentile(99.9)), math.floor(latency.max),
    errors.connect, errors.read, errors.write, errors.timeout, errors.status))
end
