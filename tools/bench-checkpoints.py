#!/usr/bin/env python3
"""`just bench-checkpoints`: what stage 2's `checkpoints` cost, on the real
Kafka of `tests/servers/kafka.sh` (start it first: `just servers`).

    tools/bench-checkpoints.py [--series N ...] [--samples N] [--intervals 1s 10s never]

For each series count: N samples spread over the series (a 3-partition
topic, keyed by series, produced with Kafka's own console producer, event
time = now so every series has one open window), then
  throughput  configs/two-stage/stage2.yaml catching up on the topic, once
              per checkpoint interval (`never`: the same config without
              `checkpoints`): wall seconds, CPU seconds, samples/s;
  size        the state SIGTERM checkpoints (every open window of every
              series): bytes, and bytes per 1,000 open series;
  restore     a second process taking all partitions over: reading the
              checkpoints plus restoring them into the filters, per MB.
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
KAFKA = Path(os.environ.get("WEIR_SERVERS_DIR", Path.home() / ".cache/weir/servers")) / "kafka-4.1.2"
BROKERS = os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:19092")
PARTITIONS = 3


def kafka_tool(main, *args, stdin=None):
    """One of Kafka's own command-line tools, from the jars kafka.sh installed."""
    java = os.environ.get("KAFKA_JAVA", "java")
    subprocess.run([java, f"-Dlog4j2.configurationFile={KAFKA / 'tools-log4j2.properties'}", "-cp",
                    str(KAFKA / "libs" / "*"), f"org.apache.kafka.tools.{main}", "--bootstrap-server", BROKERS,
                    *args], stdin=stdin, check=True, stdout=subprocess.DEVNULL)


def produce(topic, series, samples, work):
    data = work / f"samples-{series}.txt"
    with data.open("w") as f:
        for i in range(samples):
            s = i % series
            value = 50 + (i * 7919) % 900
            body = json.dumps({"metric": "response_time_ms", "value": value,
                               "labels": {"series": str(s)}}, separators=(",", ":"))
            f.write(f"m|{s}\t{body}\n")
    kafka_tool("TopicCommand", "--create", "--topic", topic, "--partitions", str(PARTITIONS))
    with data.open() as f:
        kafka_tool("ConsoleProducer", "--topic", topic, "--property", "parse.key=true",
                   "--property", "key.separator=\t", "--producer-property", "linger.ms=20",
                   "--producer-property", "batch.size=262144", stdin=f)


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(work, name, interval):
    """stage2.yaml with an admin API, `checkpoints` dropped for `never`."""
    text = (ROOT / "configs/two-stage/stage2.yaml").read_text()
    if interval == "never":
        text = re.sub(r"    checkpoints:\n(      .*\n)+", "", text)
    port = free_port()
    path = work / f"{name}.yaml"
    path.write_text(text + f'\nadmin: {{ address: "127.0.0.1:{port}" }}\n')
    return path, port


class Weir:
    def __init__(self, work, name, topic, group, checkpoints, interval):
        path, self.port = config(work, name, interval)
        self.log = work / f"{name}.log"
        env = dict(os.environ, KAFKA_BROKERS=BROKERS, METRICS_TOPIC=topic, STAGE2_GROUP=group,
                   CHECKPOINT_TOPIC=checkpoints, CHECKPOINT_INTERVAL=interval if interval != "never" else "10s",
                   OUT_DIR=str(work / name), IDLE_TIMEOUT="1h", RUST_LOG="info",
                   WEIR_PLUGIN_DIR=str(TARGET / "plugins"))
        self.proc = subprocess.Popen([str(TARGET / "release/weir"), "run", "-c", str(path)], env=env,
                                     stdout=self.log.open("w"), stderr=subprocess.STDOUT)

    def records_in(self):
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2).read().decode()
        except OSError:
            return 0
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith('weir_filter_records_in_total{filter="percentiles"'))

    def cpu_seconds(self):
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=120)
        return self.log.read_text()


def seconds(text):
    """A Rust `Duration` debug string (`12.3ms`, `1.2s`, `950µs`) in seconds."""
    m = re.match(r"([\d.]+)(ns|µs|us|ms|s)", text)
    scale = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}[m.group(2)]
    return float(m.group(1)) * scale


def strip_ansi(text):
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def run(series, samples, intervals, work):
    tag = f"{os.getpid()}-{series}-{int(time.time())}"
    topic = f"weir-bench-samples-{tag}"
    produce(topic, series, samples, work)
    rows = []
    for interval in intervals:
        group, checkpoints = f"weir-bench-{interval}-{tag}", f"weir-bench-checkpoints-{interval}-{tag}"
        weir = Weir(work, f"catch-up-{series}-{interval}", topic, group, checkpoints, interval)
        deadline = time.time() + 900
        while weir.records_in() == 0 and time.time() < deadline:
            time.sleep(0.05)
        started, cpu0 = time.time(), weir.cpu_seconds()
        while weir.records_in() < samples and time.time() < deadline:
            time.sleep(0.05)
        wall, cpu = time.time() - started, weir.cpu_seconds() - cpu0
        log = strip_ansi(weir.stop())
        row = {"series": series, "interval": interval, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
               "samples_per_s": round(samples / wall)}
        written = [int(m) for m in re.findall(r"revoked partitions checkpointed.* bytes=(\d+)", log)]
        if written:
            row["state_bytes"] = written[-1]
            row["bytes_per_1000_series"] = round(written[-1] / series * 1000)
            # A second process takes every partition over.
            after = Weir(work, f"restore-{series}-{interval}", topic, group, checkpoints, interval)
            deadline = time.time() + 120
            while time.time() < deadline and "partition state restored" not in after.log.read_text():
                time.sleep(0.2)
            time.sleep(2)
            text = strip_ansi(after.stop())
            read = [seconds(t) for t in re.findall(r"checkpoints restored.* states=[1-9]\d* .*took=(\S+)", text)]
            units = [seconds(t) for t in re.findall(r"partition state restored.* took=(\S+)", text)]
            restore = sum(read) + sum(units)
            row["restore_s"] = round(restore, 3)
            row["restore_s_per_mb"] = round(restore / (written[-1] / 1e6), 3)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--intervals", nargs="+", default=["1s", "10s", "never"])
    args = parser.parse_args()
    if not (TARGET / "release/weir").is_file():
        sys.exit("build first: just build")
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}; {args.samples} samples per run", flush=True)
    with tempfile.TemporaryDirectory() as work:
        for series in args.series:
            run(series, args.samples, args.intervals, Path(work))


if __name__ == "__main__":
    main()
