-- wrk script: prints the latency percentiles the goal names (wrk's own
-- --latency table has no 95th percentile), in milliseconds.
function done(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout
  io.write(string.format("p50 %.1f p95 %.1f p99 %.1f ms, %d requests, %d errors\n",
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.requests, errors))
end
