#!/usr/bin/env python3
"""Latency of a delivered ack (BENCHMARKS.md, issue 15 "Latency"), stdlib only.

    http-latency.py URL CHUNKS.ndjson [CONNECTIONS] [SECONDS]

Each connection (keep-alive) posts one chunk per request, the next as soon
as the answer arrives, for SECONDS (default 10), cycling through the
chunks; prints requests/s and the p50/p90/p99 of the answer time in ms.
One connection measures the latency at low load (nothing queued behind a
request); several measure throughput at saturation.
"""
import http.client
import sys
import threading
import time
import urllib.parse

url, path = sys.argv[1], sys.argv[2]
connections = int(sys.argv[3]) if len(sys.argv) > 3 else 1
seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 10.0
target = urllib.parse.urlsplit(url)
chunks = [line.encode() + b"\n" for line in open(path) if line.strip()]
times, failures, lock = [], [0], threading.Lock()


def client(offset):
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
    mine, i, end = [], offset, time.monotonic() + seconds
    while time.monotonic() < end:
        body = chunks[i % len(chunks)]
        i += connections
        start = time.perf_counter()
        conn.request("POST", target.path, body, {"content-type": "application/x-ndjson"})
        response = conn.getresponse()
        response.read()
        elapsed = time.perf_counter() - start
        if response.status == 200:
            mine.append(elapsed)
        else:
            with lock:
                failures[0] += 1
    with lock:
        times.extend(mine)


threads = [threading.Thread(target=client, args=(n,)) for n in range(connections)]
for t in threads:
    t.start()
for t in threads:
    t.join()
times.sort()
pct = lambda p: times[min(len(times) - 1, int(p * len(times)))] * 1000
print(f"{connections} connection(s), {seconds:.0f} s: {len(times) / seconds:.0f} requests/s, "
      f"p50 {pct(0.5):.2f} ms, p90 {pct(0.9):.2f} ms, p99 {pct(0.99):.2f} ms, {failures[0]} not 200")
