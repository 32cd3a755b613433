#!/usr/bin/env python3
"""HTTP load with the server's own CPU and memory (issue 15's harness), stdlib only.

    http-load.py URL PID [RECORDS] [LINES_PER_REQUEST] [CONNECTIONS] [CONTENT_TYPE]
    http-load.py --write RECORDS > records.ndjson   (the same records, for `weir bench -c`)

Posts RECORDS NDJSON records (default 2,000,000), LINES_PER_REQUEST per
request (default 1,000), over CONNECTIONS keep-alive connections (default
2): the Fluent Bit bar in ../shared/peers.md. CONTENT_TYPE defaults to
application/x-ndjson; Fluent Bit's in_http takes NDJSON as application/json. Every request body is built
before the clock starts. Each record is one log statement,
`{"message":"txn=… status=… resp_ms=…","os":…}`, the shape the extract
rule in configs/bench/http-extract.yaml reads.

The server's figures come from /proc/PID: CPU seconds (utime + stime)
spent between the first request and the last answer, divided by records
(µs/record), the peak RSS during the run (sampled every 50 ms; VmHWM
also counts start-up), and the RSS at the end. Prints one JSON line.
Any answer other than 2xx (Weir 200, Fluent Bit 201) is counted and makes
the exit status 1.
"""
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse

writing = sys.argv[1] == "--write"
if writing:
    records = per_request = int(sys.argv[2])
else:
    url, pid = sys.argv[1], int(sys.argv[2])
    records = int(sys.argv[3]) if len(sys.argv) > 3 else 2_000_000
    per_request = int(sys.argv[4]) if len(sys.argv) > 4 else 1_000
    connections = int(sys.argv[5]) if len(sys.argv) > 5 else 2
    content_type = sys.argv[6] if len(sys.argv) > 6 else "application/x-ndjson"
ticks = os.sysconf("SC_CLK_TCK")
txns, statuses, oses = ["payment", "search", "login", "checkout"], ["ok", "ok", "ok", "error"], ["ios", "android"]


def body(start):
    lines = []
    for n in range(start, start + per_request):
        message = f"txn={txns[n % 4]} status={statuses[n % 7 % 4]} resp_ms={(n * 7919) % 3000}"
        lines.append(json.dumps({"message": message, "os": oses[n % 2], "seq": n}))
    return ("\n".join(lines) + "\n").encode()


if writing:
    sys.stdout.buffer.write(body(0))
    sys.exit(0)

# A handful of distinct bodies, cycled: building 2,000 would time Python.
bodies = [body(i * per_request) for i in range(16)]
requests = records // per_request


def cpu_seconds():
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / ticks


def rss_kib(key="VmRSS"):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


failures, lock, done = [0], threading.Lock(), threading.Event()
peak = [0]


def client(offset):
    target = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=120)
    for i in range(offset, requests, connections):
        conn.request("POST", target.path, bodies[i % len(bodies)], {"content-type": content_type})
        response = conn.getresponse()
        response.read()
        if not 200 <= response.status < 300:
            with lock:
                failures[0] += 1


def sampler():
    while not done.wait(0.05):
        peak[0] = max(peak[0], rss_kib())


threads = [threading.Thread(target=client, args=(n,)) for n in range(connections)]
watch = threading.Thread(target=sampler)
cpu0, wall0 = cpu_seconds(), time.perf_counter()
watch.start()
for t in threads:
    t.start()
for t in threads:
    t.join()
wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
done.set()
watch.join()
sent = requests * per_request
print(json.dumps({
    "records": sent, "lines_per_request": per_request, "connections": connections,
    "wall_s": round(wall, 2), "records_per_s": round(sent / wall),
    "server_cpu_s": round(cpu, 2), "server_cpu_us_per_record": round(cpu / sent * 1e6, 2),
    "server_peak_rss_mib": round(peak[0] / 1024, 1), "server_end_rss_mib": round(rss_kib() / 1024, 1),
    "not_2xx": failures[0],
}))
sys.exit(1 if failures[0] else 0)
