-- wrk script for benchmarks/serving/run.py: POST the body in $BODY_FILE, send the
-- Authorization header in $AUTH_HEADER when set, print one machine-readable line.
-- Same WRKRESULT fields as the shared harness's script, so its parsing applies.
local path = os.getenv("BODY_FILE")
local f = assert(io.open(path, "rb"), "cannot open BODY_FILE " .. tostring(path))
wrk.body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local auth = os.getenv("AUTH_HEADER")
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRKRESULT\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n",
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.status, e.connect, e.read, e.write, e.timeout))
end
