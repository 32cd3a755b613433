#!/usr/bin/env python3
"""ES's own _bulk limit for the benchmark: the same documents weir sends
(with @timestamp and a create action with an id), 2,000 per request, one
request at a time like weir's output, bodies prepared before timing."""
import hashlib, http.client, json, sys, time
docs_path, index, per = sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 2000
lines = open(docs_path, "rb").read().splitlines()
bodies = []
for start in range(0, len(lines), per):
    out = []
    for i, line in enumerate(lines[start:start + per]):
        doc = json.loads(line)
        ts = doc["message"].split(" ", 1)[0]
        src = b'{"@timestamp":"' + ts.encode() + b'",' + line[1:]
        out.append(json.dumps({"create": {"_index": index, "_id": hashlib.sha256(line + str(start + i).encode()).hexdigest()[:32]}}).encode())
        out.append(src)
    bodies.append(b"\n".join(out) + b"\n")
conn = http.client.HTTPConnection("127.0.0.1", 19200)
t0 = time.time()
for body in bodies:
    conn.request("POST", "/_bulk?filter_path=errors", body, {"Content-Type": "application/x-ndjson"})
    r = json.loads(conn.getresponse().read())
    assert not r["errors"], r
dt = time.time() - t0
print(f"{len(lines)} docs in {dt:.2f} s = {len(lines)/dt:.0f} docs/s")
