-- wrk script: POSTs batches of distinct events (the library's batch format)
-- to ldguard-server's event endpoint. Every request body differs, so no
-- batch is a duplicate, also across wrk processes (each has its own SEED).
-- Environment: TOKEN, BATCH (events per request), SEED.
local batch = tonumber(os.getenv("BATCH") or "200")
local seed = tonumber(os.getenv("SEED") or "0")
local token = os.getenv("TOKEN")
local counter = 0
local thread_id = 0
local images = {"shop/web:1.4", "shop/db:2", "shop/cache:7"}
local actions = {"allow", "audit", "deny"}

function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", seed * 100 + thread_id)
end

function request()
  counter = counter + 1
  local parts = {}
  for i = 1, batch do
    local n = counter * batch + i
    local sec = (tid * 7919 + n) % 86400
    parts[i] = string.format(
      '{"time":"2026-11-23T%02d:%02d:%02d.%06dZ","container":"c%d","image":"%s","pid":%d,"ppid":1,"uid":33,' ..
      '"program":"/usr/sbin/nginx","call":"openat","kind":"file","target":"/srv/t%d/f%d","access":"read",' ..
      '"action":"%s","enforced":true,"rule":"r%d","severity":"high","policy":"web","mode":"enforce",' ..
      '"message":"bench event %d of thread %d"}',
      math.floor(sec / 3600), math.floor(sec / 60) % 60, sec % 60, n % 1000000, tid, images[(n % 3) + 1], 1000 + (n % 50),
      tid, n, actions[(n % 3) + 1], n % 20, n, tid)
  end
  return wrk.format("POST", nil,
    {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"},
    "[" .. table.concat(parts, ",") .. "]")
end

function done(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout
  io.write(string.format("ingest: %d requests, %d errors, %.0f events/s\n",
    summary.requests, errors, (summary.requests - errors) * batch / (summary.duration / 1e6)))
end
