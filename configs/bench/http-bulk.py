"""Per-document cost of Weir's `_bulk` endpoint: post one large `_bulk`
body several times to a running Weir and report the median `took` (read,
decode and queue, as Weir measures it) and wall time per document.

usage: python3 configs/bench/http-bulk.py URL DOCS DOC_BYTES [RUNS [QUERY]]
QUERY is appended to `/_bulk`, e.g. Logstash's
`filter_path=errors,items.*.error,items.*.status`.
Weir: configs/bench/http-bulk.yaml (http input, blackhole output).
Stdlib only, so it runs with any Python 3.
"""

import json
import statistics
import sys
import time
import urllib.request

url, docs, doc_bytes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
runs = int(sys.argv[4]) if len(sys.argv) > 4 else 5
query = f"?{sys.argv[5]}" if len(sys.argv) > 5 else ""
pad = "x" * max(0, doc_bytes - 40)
lines = []
for i in range(docs):
    lines.append('{"create":{"_index":"logs-app"}}')
    lines.append(json.dumps({"n": i, "message": pad}))
body = ("\n".join(lines) + "\n").encode()
took, wall = [], []
for run in range(runs):
    request = urllib.request.Request(
        f"{url}/_bulk{query}", data=body, headers={"Content-Type": "application/x-ndjson"}
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=300) as response:
        answer = json.load(response)
    wall.append(time.perf_counter() - started)
    assert not answer["errors"] and len(answer["items"]) == docs, "every item accepted"
    took.append(answer.get("took", 0) / 1000)
print(json.dumps({
    "docs": docs, "body_mb": round(len(body) / 1e6, 1),
    "took_us_per_doc": round(statistics.median(took) / docs * 1e6, 2),
    "wall_us_per_doc": round(statistics.median(wall) / docs * 1e6, 2),
}))
