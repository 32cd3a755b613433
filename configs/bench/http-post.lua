-- wrk script: POST one NDJSON body (default: 20 mobile chunks of 50
-- statements = 1,000 statements, made by
-- `weir generate --chunks 20 --statements 50 > target/bench/http-body.ndjson`)
-- on every request. BENCH_BODY overrides the file.
local path = os.getenv("BENCH_BODY") or "target/bench/http-body.ndjson"
local file = assert(io.open(path, "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/x-ndjson"

