"""Writes N statement records (default 20,000) shaped like `split`'s output
to stdout, one in ten with an e-mail address and one in twenty with a card
number: the input of plugins/examples/bench.sh. Deterministic."""

import json
import random
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
rng = random.Random(7)
for i in range(n):
    time = f"2026-11-22T10:{i // 240 % 60:02d}:{i // 4 % 60:02d}.{i % 4 * 250:03d}Z"
    if i % 2:
        page = rng.choice(["home", "cart", "search", "product"])
        message = f"{time} page={page} load={rng.randint(300, 2000)}ms render={rng.randint(20, 120)}ms"
    else:
        message = f"{time} txn=checkout status=ok resp_ms={rng.randint(100, 900)}"
    if i % 10 == 3:
        message += f" user=user{i}@example.com"
    if i % 20 == 7:
        message += " card=4111 1111 1111 1111"
    record = {"message": message, "app": "shop", "app_version": "4.2.1", "os": "ios", "model": "iPhone14,2"}
    print(json.dumps(record, separators=(",", ":")))
