"""Independent Fluent Forward senders for Weir's end-to-end tests.

`fluent-logger` is Fluentd's own Python client (Message mode); the other
senders build frames by hand from the Forward Protocol Specification v1 with
the `msgpack` library, so nothing here shares code with Weir. Each command
prints one JSON line with what it saw.

usage: forward_client.py COMMAND HOST PORT [ARGS...]
"""

import base64
import gzip
import hashlib
import json
import os
import socket
import ssl
import struct
import sys

import msgpack


def event_time(ns):
    """EventTime: msgpack ext type 0, seconds and nanoseconds, big-endian."""
    return msgpack.ExtType(0, struct.pack(">II", ns // 10**9, ns % 10**9))


def connect(host, port, cafile=None):
    sock = socket.create_connection((host, port), timeout=20)
    if cafile:
        context = ssl.create_default_context(cafile=cafile)
        sock = context.wrap_socket(sock, server_hostname="localhost")
    return sock


def read_one(sock):
    """Read one msgpack value from the socket; None when it closes first."""
    unpacker = msgpack.Unpacker(raw=False)
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            return None
        if not data:
            return None
        unpacker.feed(data)
        for value in unpacker:
            return value


def chunk_id():
    return base64.b64encode(os.urandom(16)).decode()


def packed(entries):
    return b"".join(msgpack.packb([event_time(t), r]) for t, r in entries)


def frame(mode, tag, entries, chunk):
    option = {"chunk": chunk, "size": len(entries)}
    if mode == "forward":
        body = [[event_time(t), r] for t, r in entries]
    elif mode == "packed":
        body = packed(entries)  # bytes: msgpack bin
    elif mode == "compressed":
        # Two gzip members, as the spec allows.
        half = len(entries) // 2
        body = gzip.compress(packed(entries[:half])) + gzip.compress(packed(entries[half:]))
        option["compressed"] = "gzip"
    else:
        raise SystemExit(f"unknown mode {mode}")
    return msgpack.packb([tag, body, option], use_bin_type=True)


def cmd_logger(host, port, tag, count):
    """fluent-logger's FluentSender, EventTime (nanosecond) precision."""
    from fluent import sender

    logger = sender.FluentSender(tag, host=host, port=int(port), nanosecond_precision=True)
    sent = []
    for i in range(int(count)):
        ns = 1_764_000_000_000_000_000 + i * 1_000_123
        time_ = sender.EventTime.from_unix_nano(ns)
        ok = logger.emit_with_time("web", time_, {"i": i, "message": f"statement {i}"})
        sent.append({"i": i, "ok": ok, "time": ns})
    logger.close()
    print(json.dumps({"sent": sent, "error": str(logger.last_error) if logger.last_error else None}))


def cmd_frames(host, port, output, cafile=""):
    """One frame of each of Forward, PackedForward and CompressedPackedForward,
    each with a chunk; after each ack, count the records in the output file."""
    sock = connect(host, int(port), cafile or None)
    results = []
    for n, mode in enumerate(["forward", "packed", "compressed"]):
        chunk = chunk_id()
        entries = [(1_764_000_000_000_000_000 + n * 10**9 + i, {"mode": mode, "i": i}) for i in range(10)]
        sock.sendall(frame(mode, f"app.{mode}", entries, chunk))
        answer = read_one(sock)
        with open(output) as f:
            written = sum(1 for line in f if json.loads(line)["tag"] == f"app.{mode}")
        results.append({"mode": mode, "acked": answer == {"ack": chunk}, "written_at_ack": written})
    sock.close()
    print(json.dumps(results))


def cmd_disconnect(host, port, output):
    """Send a chunk and hang up before its ack; send it again on a new
    connection and wait for that ack."""
    chunk = chunk_id()
    entries = [(1_764_000_000_000_000_000 + i, {"resent": True, "i": i}) for i in range(5)]
    data = frame("packed", "app.resent", entries, chunk)
    first = connect(host, int(port))
    first.sendall(data)
    first.close()
    second = connect(host, int(port))
    second.sendall(data)
    answer = read_one(second)
    second.close()
    print(json.dumps({"acked": answer == {"ack": chunk}}))


def cmd_bad_frame(host, port):
    """A good connection, a connection sending a bad frame, a connection
    sending a frame over the limit: only the bad ones are closed."""
    good = connect(host, int(port))
    bad = connect(host, int(port))
    bad.sendall(b"\x92\xc1\xc1")  # an array whose elements use the never-used 0xc1
    bad_closed = read_one(bad) is None
    big = connect(host, int(port))
    try:
        big.sendall(msgpack.packb(["app.big", b"x" * 300_000, {}], use_bin_type=True))
    except OSError:
        pass
    big_closed = read_one(big) is None
    chunk = chunk_id()
    good.sendall(frame("forward", "app.good", [(1_764_000_000_000_000_000, {"still": "open"})], chunk))
    good_acked = read_one(good) == {"ack": chunk}
    print(json.dumps({"bad_closed": bad_closed, "big_closed": big_closed, "good_acked": good_acked}))


def ping(helo, key, hostname="client.example"):
    nonce = helo[1]["nonce"]
    nonce = nonce if isinstance(nonce, bytes) else nonce.encode()
    salt = os.urandom(16)
    digest = hashlib.sha512(salt + hostname.encode() + nonce + key.encode()).hexdigest()
    return msgpack.packb(["PING", hostname, salt, digest, "", ""], use_bin_type=True), salt, nonce


def cmd_handshake(host, port, key, wrong_key):
    """The shared-key handshake with the right key (then a chunk and its
    ack), and with a wrong one (refused, closed)."""
    out = {}
    sock = connect(host, int(port))
    helo = read_one(sock)
    out["helo"] = helo[0]
    data, salt, nonce = ping(helo, key)
    sock.sendall(data)
    pong = read_one(sock)
    expected = hashlib.sha512(salt + pong[3].encode() + nonce + key.encode()).hexdigest()
    out["pong_ok"] = pong[1]
    out["server_proved_key"] = pong[4] == expected
    chunk = chunk_id()
    sock.sendall(frame("forward", "app.auth", [(1_764_000_000_000_000_000, {"auth": "ok"})], chunk))
    out["acked"] = read_one(sock) == {"ack": chunk}
    sock.close()
    sock = connect(host, int(port))
    helo = read_one(sock)
    data, _, _ = ping(helo, wrong_key)
    sock.sendall(data)
    pong = read_one(sock)
    out["wrong_pong_ok"] = pong[1]
    out["wrong_reason"] = pong[2]
    out["wrong_closed"] = read_one(sock) is None
    sock.close()
    print(json.dumps(out))


def main():
    command, host, port, *args = sys.argv[1:]
    {
        "logger": cmd_logger,
        "frames": cmd_frames,
        "disconnect": cmd_disconnect,
        "bad-frame": cmd_bad_frame,
        "handshake": cmd_handshake,
    }[command](host, port, *args)


if __name__ == "__main__":
    main()
