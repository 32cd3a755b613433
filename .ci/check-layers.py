#!/usr/bin/env python3
"""The layer rule of host/src (see host/src/lib.rs and CONTRIBUTING.md): a
module may use modules on lower floors only, never one on its own floor
(components do not know each other) or above. Reads every `crate::NAME`
path outside test code and exits 1 naming each violation."""
import pathlib
import re
import sys

# Bottom to top. Keep in step with the table in host/src/lib.rs.
FLOORS = [
    ["core", "telemetry"],
    ["kafka"],
    ["inputs", "outputs", "plugin", "admin"],
    ["config"],
    ["pipeline"],
    ["cli", "fuzz"],
]
FLOOR = {name: i for i, names in enumerate(FLOORS) for name in names}

src = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent / "host" / "src")
path_re = re.compile(r"\bcrate::([a-z_]+)")
problems = []
for file in sorted(src.rglob("*.rs")):
    rel = file.relative_to(src)
    module = rel.parts[0].removesuffix(".rs")
    if module in ("lib", "main") or rel.name == "tests.rs":
        continue
    if module not in FLOOR:
        problems.append(f"{rel}: module `{module}` has no floor in .ci/check-layers.py")
        continue
    text = file.read_text()
    # Unit tests may reach anywhere; only the code they test is layered.
    cut = re.search(r"^#\[cfg\(test\)\]\s*\n\s*mod tests", text, re.M)
    if cut:
        text = text[: cut.start()]
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("//"):
            continue
        for used in path_re.findall(line):
            if used == module or used not in FLOOR:
                continue
            if FLOOR[used] >= FLOOR[module]:
                where = "above" if FLOOR[used] > FLOOR[module] else "beside"
                problems.append(f"{rel}:{number}: `{module}` uses `{used}`, which is {where} it")
for p in problems:
    print(p)
if problems:
    print(f"{len(problems)} layer violation(s); the floors, bottom up: "
          + " < ".join("{" + ", ".join(f) + "}" for f in FLOORS), file=sys.stderr)
    sys.exit(1)
print("layers ok")
