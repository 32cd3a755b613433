#!/usr/bin/env python3
"""`just bench`: rerun the benchmarks of BENCHMARKS.md that need no server
and print them as one table, with the machine, the date and the command of
each row.

    tools/bench.py [--rounds N] [--baseline DIR] [--fluent-bit BINARY] [--only ROW ...]

--baseline DIR: DIR holds an earlier build (`DIR/weir` and `DIR/plugins/`,
e.g. copied from target/release/weir and target/plugins before a change).
Every row then runs the baseline and the current build alternately, N
rounds each, and the table gives both medians and their ratio: on a shared
machine a ratio measured in one run says more than two absolute figures
measured hours apart.

--fluent-bit BINARY adds Fluent Bit's two HTTP rows (configs/bench/fluent-bit/),
measured with the same load in the same run, so the http-* rows have their
bar beside them (Fluent Bit is not installed by the project's scripts).

Rows (the HTTP ones start Weir, load it with a stdlib client that builds its
requests before timing, and read the server's CPU and RSS from /proc):
  split        weir bench --plugin split.wasm, chunks of 50 statements, 20 per call: statements/s
  chain        weir bench -c split-extract-percentiles.yaml: CPU µs per statement, per stage
  native       the same chain's pure cores compiled natively (tools/native-chain): the floor
  workers      the chain under `weir run`, 1 then 2 workers: wall seconds, speed-up
  http-discard HTTP -> blackhole, ack delivered: server CPU µs per record, peak RSS
  http-extract HTTP -> extract (one rule) -> blackhole: server CPU µs per record, peak RSS
  fluent-bit-discard, fluent-bit-parser   the same two with Fluent Bit (--fluent-bit)
  latency      HTTP -> split -> extract -> blackhole, ack delivered, 1 connection: p50
  bulk         `_bulk` into a blackhole: Weir's own `took` per document

Rows that need Elasticsearch or Kafka (BENCHMARKS.md says which) are not
rerun here. Exit status 1 when a row fails.
"""
import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
BENCH = ROOT / "configs" / "bench"
CHUNKS = TARGET / "bench" / "chunks-20k.ndjson"
NATIVE = TARGET / "native-chain" / "release" / "weir-native-chain"


class Build:
    """A weir binary and its plugin folder."""

    def __init__(self, name, weir, plugins):
        self.name, self.weir, self.plugins = name, Path(weir), Path(plugins)

    def env(self, **extra):
        return dict(os.environ, WEIR_PLUGIN_DIR=str(self.plugins), **extra)

    def run(self, args, **extra):
        """Run weir to its end: its output, and its resource usage (CPU, max RSS)."""
        with tempfile.TemporaryFile("w+") as out:
            child = subprocess.Popen([str(self.weir), "--log-level", "warn", *args], env=self.env(**extra),
                                     stdout=out, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
            _, status, usage = os.wait4(child.pid, 0)
            child.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            text = out.read()
        if child.returncode != 0:
            raise RuntimeError(f"{self.weir} {' '.join(args)} failed: {text[-2000:]}")
        return text, usage


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server on a free port, stopped with SIGINT: `weir run -c CONFIG`
    (the port in BENCH_ADDRESS), or with `fluent_bit` Fluent Bit (BENCH_PORT)."""

    def __init__(self, build, config, fluent_bit=None, **env):
        self.port = free_port()
        if fluent_bit:
            command = [str(fluent_bit), "-c", str(BENCH / config)]
            env = dict(os.environ, BENCH_PORT=str(self.port), **env)
        else:
            command = [str(build.weir), "--log-level", "warn", "run", "-c", str(BENCH / config)]
            env = build.env(BENCH_ADDRESS=f"127.0.0.1:{self.port}", **env)
        self.process = subprocess.Popen(command, env=env, cwd=ROOT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"weir exited with {self.process.returncode} before listening")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.process.kill()
        self.process.wait()
        raise RuntimeError(f"weir did not listen on port {self.port} within 60 s")

    def stop(self):
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=60)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.process.poll() is None:
            self.stop()


def python(script, *args):
    done = subprocess.run([sys.executable, str(BENCH / script), *map(str, args)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{script} failed: {done.stdout[-1000:]}{done.stderr[-1000:]}")
    return done.stdout


def number(pattern, text):
    found = re.search(pattern, text)
    if not found:
        raise RuntimeError(f"no {pattern!r} in: {text[-1500:]}")
    return float(found.group(1))


# Each row: (name, unit, better, command, function(build) -> figure, details).

def chain(build):
    out, _ = build.run(["bench", "-c", "configs/bench/split-extract-percentiles.yaml", "--input", str(CHUNKS)])
    stages = ", ".join(f"{name} {s} s" for name, s in re.findall(r"^  (\w+): .*?; ([0-9.]+) s in the stage", out, re.M))
    return number(r"([0-9.]+) µs per statement", out), f"1M statements; CPU per stage: {stages}"


def split(build):
    config = ('{"field":"logs","context":["app","app_version",{"from":"device.os","to":"os"}],'
              '"time":{"regex":"^(?P<time>\\\\S+)"}}')
    out, _ = build.run(["bench", "--plugin", str(build.plugins / "split.wasm"), "--input", str(CHUNKS),
                        "--batch", "20", "--duration", "5s", "--config", config])
    return number(r"([0-9.]+) records out/s", out) / 1000, out.strip().splitlines()[-1]


def native(_build):
    done = subprocess.run([str(NATIVE), str(CHUNKS)], capture_output=True, text=True, check=True)
    return number(r"total ([0-9.]+)", done.stdout), done.stdout.strip().splitlines()[-1]


def workers(build):
    walls, said = {}, []
    for n in (1, 2):
        started = time.perf_counter()
        _, usage = build.run(["run", "-c", "configs/bench/split-extract-percentiles.yaml"],
                             BENCH_WORKERS=str(n), BENCH_INPUT=str(CHUNKS))
        walls[n] = time.perf_counter() - started
        said.append(f"{n} worker(s) {walls[n]:.2f} s wall, {usage.ru_utime + usage.ru_stime:.2f} s CPU, "
                    f"max RSS {usage.ru_maxrss // 1024} MiB")
    return walls[1] / walls[2], "; ".join(said)


def loaded(server, path, *content_type):
    """http-load.py's standard load on `server`: server CPU µs per record, and a detail."""
    out = json.loads(python("http-load.py", f"http://127.0.0.1:{server.port}{path}", server.process.pid,
                            2_000_000, 1_000, 2, *content_type))
    return out["server_cpu_us_per_record"], f"{out['records_per_s']:,} records/s, peak RSS {out['server_peak_rss_mib']} MiB"


def http(tag):
    def row(build):
        with Server(build, "http-extract.yaml", BENCH_TAG=tag, BENCH_WORKERS="1") as server:
            return loaded(server, "/ingest")
    return row


def fluent_bit(records_to):
    def row(binary):
        # Fluent Bit's in_http takes NDJSON only as application/json.
        with Server(None, "fluent-bit/http-parser.conf", fluent_bit=binary, BENCH_FILTER=records_to) as server:
            return loaded(server, "/logs", "application/json")
    return row


def latency(build):
    sample = TARGET / "bench" / "chunks-2k.ndjson"
    if not sample.exists():
        sample.write_text("".join(CHUNKS.read_text().splitlines(keepends=True)[:2000]))
    with Server(build, "http-split-extract.yaml") as server:
        out = python("http-latency.py", f"http://127.0.0.1:{server.port}/ingest", sample, 1, 5)
    return number(r"p50 ([0-9.]+) ms", out), out.strip()


def bulk(build):
    with Server(build, "http-bulk.yaml") as server:
        out = json.loads(python("http-bulk.py", f"http://127.0.0.1:{server.port}", 400_000, 100, 3))
    return out["took_us_per_doc"], f"{out['body_mb']} MB body, wall {out['wall_us_per_doc']} µs/doc"


ROWS = [
    ("split", "k statements/s", "higher", "weir bench --plugin split.wasm --input chunks-20k.ndjson --batch 20 --duration 5s --config ...", split),
    ("chain", "µs CPU/statement", "lower", "weir bench -c configs/bench/split-extract-percentiles.yaml --input chunks-20k.ndjson", chain),
    ("native", "µs CPU/statement", "lower", "target/native-chain/release/weir-native-chain chunks-20k.ndjson", native),
    ("workers", "x (1 worker wall / 2 workers wall)", "higher", "BENCH_WORKERS=1|2 weir run -c configs/bench/split-extract-percentiles.yaml", workers),
    ("http-discard", "µs server CPU/record", "lower", "BENCH_TAG=raw weir run -c configs/bench/http-extract.yaml + http-load.py (2M records, 1,000/request, 2 connections)", http("raw")),
    ("http-extract", "µs server CPU/record", "lower", "BENCH_TAG=logs weir run -c configs/bench/http-extract.yaml + http-load.py (2M records, 1,000/request, 2 connections)", http("logs")),
    ("fluent-bit-discard", "µs server CPU/record", "lower", "BENCH_FILTER=dummy fluent-bit -c configs/bench/fluent-bit/http-parser.conf + http-load.py (as above)", fluent_bit("dummy")),
    ("fluent-bit-parser", "µs server CPU/record", "lower", "BENCH_FILTER='*' fluent-bit -c configs/bench/fluent-bit/http-parser.conf + http-load.py (as above)", fluent_bit("*")),
    ("latency", "ms p50, 1 connection", "lower", "weir run -c configs/bench/http-split-extract.yaml + http-latency.py URL chunks-2k.ndjson 1 5", latency),
    ("bulk", "µs took/document", "lower", "weir run -c configs/bench/http-bulk.yaml + http-bulk.py URL 400000 100 3", bulk),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--baseline", type=Path)
    parser.add_argument("--fluent-bit", type=Path)
    parser.add_argument("--only", nargs="*", choices=[r[0] for r in ROWS])
    args = parser.parse_args()
    current = Build("current", TARGET / "release" / "weir", TARGET / "plugins")
    builds = [current]
    if args.baseline:
        builds.insert(0, Build("baseline", args.baseline / "weir", args.baseline / "plugins"))
    if not CHUNKS.exists():
        CHUNKS.parent.mkdir(parents=True, exist_ok=True)
        with open(CHUNKS, "w") as out:
            subprocess.run([str(current.weir), "generate", "--chunks", "20000", "--statements", "50"],
                           stdout=out, check=True)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"# just bench, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {os.cpu_count()} cores ({cpu}), "
          f"load average {' '.join(open('/proc/loadavg').read().split()[:3])}, {args.rounds} round(s)"
          + (f", baseline {args.baseline}" if args.baseline else ""))
    failed = False
    table = []
    for name, unit, better, command, measure in ROWS:
        if args.only and name not in args.only:
            continue
        if name.startswith("fluent-bit") and not args.fluent_bit:
            continue
        figures = {b.name: [] for b in builds}
        details = {}
        try:
            for _ in range(args.rounds):
                # The native floor and Fluent Bit do not depend on the build under test.
                if name == "native":
                    figure, details["current"] = measure(current)
                    figures["current"].append(figure)
                    continue
                if name.startswith("fluent-bit"):
                    figure, details["current"] = measure(args.fluent_bit)
                    figures["current"].append(figure)
                    continue
                for build in builds:
                    figure, details[build.name] = measure(build)
                    figures[build.name].append(figure)
        except (RuntimeError, subprocess.CalledProcessError, OSError) as e:
            print(f"{name}: FAILED: {e}", file=sys.stderr)
            failed = True
            continue
        median = {b: statistics.median(v) for b, v in figures.items() if v}
        cells = [name, f"{median['current']:.2f} {unit} ({better} is better)"]
        if args.baseline:
            base = median.get("baseline")
            cells.append(f"{base:.2f}" if base is not None else "-")
            cells.append(f"{median['current'] / base:.2f}" if base else "-")
        cells.append(details["current"])
        cells.append(f"`{command}`")
        table.append(cells)
        print(f"{name}: " + " | ".join(cells[1:-1]), file=sys.stderr, flush=True)
    head = ["row", "current (median)"] + (["baseline", "current / baseline"] if args.baseline else []) + ["detail", "command"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for cells in table:
        print("| " + " | ".join(cells) + " |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
