"""`redact` in Python: the WIT glue around redact.py (componentize-py).

componentize-py generates the `wit_world` package from wit/filter.wit at
build time; this module exports the `plugin` interface as the class
`Plugin`, whose one instance lives as long as the component instance.
"""

from typing import List

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import host
from wit_world.imports.types import BatchResult, ConfigError, Emitted, Event, Rejected

import redact

# The instance's state: set by configure, carried by snapshot/restore.
_redactor = None


class Plugin(exports.Plugin):
    def configure(self, config: str) -> None:
        global _redactor
        try:
            _redactor = redact.Redactor(redact.parse_config(config))
        except redact.ConfigError as e:
            raise Err(ConfigError(field=e.field, message=e.message))

    def process(self, events: List[Event]) -> BatchResult:
        if _redactor is None:
            raise Err("process called before configure")
        emitted = []
        rejected = []
        emails = cards = 0
        for index, event in enumerate(events):
            try:
                body, e, c = _redactor.redact(event.body)
            except redact.NotAnObject:
                rejected.append(Rejected(index=index, reason="body is not a json object"))
                continue
            if body is not None:
                event.body = body
                emails += e
                cards += c
            emitted.append(Emitted(parent=index, event=event))
        # Once per call, never per record.
        host.counter_add("emails", emails)
        host.counter_add("cards", cards)
        return BatchResult(emitted=emitted, rejected=rejected)

    def tick(self, now: int) -> List[Event]:
        return []

    def snapshot(self) -> bytes:
        return _redactor.snapshot() if _redactor is not None else b""

    def restore(self, state: bytes) -> None:
        try:
            _redactor.restore(state)
        except ValueError as e:
            raise Err(str(e))
