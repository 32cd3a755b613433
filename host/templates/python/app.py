"""`{{name}}`: a Weir filter in Python. It marks every record with
`"seen_by": "{{name}}"` and drops the records whose `level` is the
configured `drop_level`; a body that is not a JSON object is rejected
(dead-lettered with the reason).

componentize-py generates the `wit_world` package from wit/filter.wit at
build time (build.sh); this module exports the `plugin` interface as the
class `Plugin`, whose one instance lives as long as the component instance.
"""

import json
from typing import List

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import host
from wit_world.imports.types import BatchResult, ConfigError, Emitted, Event, Rejected

# Spliced before a body's closing brace, so the rest of it is passed on
# byte for byte rather than parsed and written again.
SEEN_BY = b'"seen_by":"{{name}}"'

# The `config:` block, set by configure: records whose `level` is this are dropped.
_drop_level = None
_configured = False


class BadConfig(Exception):
    """A bad `config:` block: `field` names the key."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def parse_config(text: str):
    """The drop level of a `config:` block; raises BadConfig naming the key."""
    config = json.loads(text)
    for key in config:
        if key != "drop_level":
            raise BadConfig(key, "unknown key; the only key is drop_level")
    drop_level = config.get("drop_level")
    if drop_level is not None and not isinstance(drop_level, str):
        raise BadConfig("drop_level", f"expected a string, found {json.dumps(drop_level)}")
    return drop_level


def mark(body: bytes) -> bytes:
    """`body` with SEEN_BY spliced in."""
    head = body.rstrip()[:-1]
    separator = b"" if head.rstrip().endswith(b"{") else b","
    return head + separator + SEEN_BY + b"}"


class Plugin(exports.Plugin):
    def configure(self, config: str) -> None:
        global _drop_level, _configured
        try:
            _drop_level = parse_config(config)
        except BadConfig as e:
            raise Err(ConfigError(field=e.field, message=e.message))
        _configured = True

    def process(self, events: List[Event]) -> BatchResult:
        if not _configured:
            raise Err("process called before configure")
        emitted = []
        rejected = []
        dropped = 0
        for index, event in enumerate(events):
            try:
                fields = json.loads(event.body)
            except ValueError:
                fields = None
            if not isinstance(fields, dict):
                rejected.append(Rejected(index=index, reason="body is not a JSON object"))
                continue
            if _drop_level is not None and fields.get("level") == _drop_level:
                # Neither emitted nor rejected: acknowledged as consumed.
                dropped += 1
                continue
            event.body = mark(event.body)
            emitted.append(Emitted(parent=index, event=event))
        # Once per call, never per record.
        host.counter_add("dropped", dropped)
        return BatchResult(emitted=emitted, rejected=rejected)

    def tick(self, now: int) -> List[Event]:
        # No timers: nothing to emit without input.
        return []

    def snapshot(self) -> bytes:
        # No state to hand over across a reload.
        return b""

    def restore(self, state: bytes) -> None:
        pass
