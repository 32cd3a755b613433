"""The `redact` example's logic: masks e-mail addresses and payment card
numbers in one string member of each record's JSON body.

docs/plugins.md ("The redact filter") specifies the behaviour; every
language's example implements it byte for byte. This module imports nothing
from the WIT bindings, so it runs, and is tested, under plain CPython.
"""

import json
import re

DEFAULT_FIELD = "message"
DEFAULT_MASK = "[REDACTED]"
DEFAULT_EMAIL_PATTERN = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"

# A card is 13 to 19 digits that pass the Luhn check.
CARD_MIN_DIGITS = 13
CARD_MAX_DIGITS = 19

# A run: ASCII digits with at most one space or dash between two digits.
# Only runs of 13 digits or more can hold a card; the regex skips the rest
# (a shorter run fails from every start inside it, so matches are whole runs).
_RUN = re.compile(r"[0-9](?:[ -]?[0-9]){12,}")
_GROUP = re.compile(r"[0-9]+")
# 13 digits in a run anywhere in a body: the raw bytes may hold a card.
_CARD_BYTES = re.compile(rb"[0-9](?:[ -]?[0-9]){12}")
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NESTED = re.compile(rb'[\[\]{}"]')
_SCALAR_END = re.compile(rb"[\s,}\]]")
_WS = re.compile(rb"[ \t\r\n]*")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_BAD_NAME = re.compile('["\\\\\x00-\x1f]')


class ConfigError(Exception):
    """A bad `config:` block: `field` names the key (None: the whole block)."""

    def __init__(self, field, message):
        super().__init__(message)
        self.field = field
        self.message = message


class NotAnObject(Exception):
    """The body's top level is not a JSON object this filter can scan."""


class Config:
    """The validated `config:` block."""

    def __init__(self, field, mask, email, email_needs_at, cards, total_field):
        self.field = field
        self.mask = mask
        # The compiled e-mail pattern, or None when `emails` is false.
        self.email = email
        # Whether the pattern matches nothing without an `@` (the default
        # does): then text without one skips the regex.
        self.email_needs_at = email_needs_at
        self.cards = cards
        self.total_field = total_field


def parse_config(text):
    """Config from the JSON text of the `config:` block; raises ConfigError."""
    try:
        raw = json.loads(text)
    except ValueError:
        raw = None
    if not isinstance(raw, dict):
        raise ConfigError(None, "config is not a json object")
    known = ("field", "mask", "email_pattern", "emails", "cards", "total_field")
    for key in raw:
        if key not in known:
            raise ConfigError(key, "unknown key")

    def string(key, default):
        value = raw.get(key, default)
        if not isinstance(value, str):
            raise ConfigError(key, "expected a string")
        return value

    def boolean(key):
        value = raw.get(key, True)
        if not isinstance(value, bool):
            raise ConfigError(key, "expected true or false")
        return value

    field = string("field", DEFAULT_FIELD)
    if not field:
        raise ConfigError("field", "must not be empty")
    mask = string("mask", DEFAULT_MASK)
    pattern = string("email_pattern", DEFAULT_EMAIL_PATTERN)
    if not pattern:
        raise ConfigError("email_pattern", "must not be empty")
    try:
        email = re.compile(pattern)
    except re.error as e:
        raise ConfigError("email_pattern", f"invalid regular expression: {e}") from None
    emails = boolean("emails")
    cards = boolean("cards")
    total_field = raw.get("total_field")
    if total_field is not None:
        if not isinstance(total_field, str):
            raise ConfigError("total_field", "expected a string or null")
        if not total_field:
            raise ConfigError("total_field", "must not be empty")
        if _BAD_NAME.search(total_field):
            raise ConfigError("total_field", "must not contain quotes, backslashes or control characters")
        if total_field == field:
            raise ConfigError("total_field", "must differ from field")
    return Config(field, mask, email if emails else None, pattern == DEFAULT_EMAIL_PATTERN, cards, total_field)


def luhn(digits):
    """Whether a string of ASCII digits passes the Luhn check."""
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = ord(c) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def mask_cards(text, mask):
    """`text` with each card masked, and how many."""
    out = []
    last = 0
    count = 0
    for run in _RUN.finditer(text):
        groups = [(run.start() + g.start(), run.start() + g.end()) for g in _GROUP.finditer(run.group())]
        a = 0
        while a < len(groups):
            best = None
            digits = ""
            for b in range(a, len(groups)):
                digits += text[groups[b][0]:groups[b][1]]
                if len(digits) > CARD_MAX_DIGITS:
                    break
                if len(digits) >= CARD_MIN_DIGITS and luhn(digits):
                    best = b
            if best is None:
                a += 1
                continue
            out.append(text[last:groups[a][0]])
            out.append(mask)
            last = groups[best][1]
            count += 1
            a = best + 1
    out.append(text[last:])
    return "".join(out), count


def redact_text(text, config):
    """(text, e-mails masked, cards masked)."""
    emails = 0
    if config.email is not None and (not config.email_needs_at or "@" in text):
        out = []
        last = 0
        for m in config.email.finditer(text):
            if m.end() == m.start():
                continue
            out.append(text[last:m.start()])
            out.append(config.mask)
            last = m.end()
            emails += 1
        out.append(text[last:])
        text = "".join(out)
    cards = 0
    if config.cards:
        text, cards = mask_cards(text, config.mask)
    return text, emails, cards


def _ws(body, i):
    return _WS.match(body, i).end()


def _string_end(body, i):
    """End (exclusive) of the JSON string starting at body[i] == '"'."""
    m = _STRING.match(body, i)
    if m is None:
        raise NotAnObject()
    return m.end()


def _value_end(body, i):
    """End (exclusive) of the JSON value starting at body[i]."""
    if i >= len(body):
        raise NotAnObject()
    c = body[i]
    if c == 0x22:  # "
        return _string_end(body, i)
    if c in (0x7B, 0x5B):  # { [
        depth = 0
        while True:
            m = _NESTED.search(body, i)
            if m is None:
                raise NotAnObject()
            c = body[m.start()]
            if c == 0x22:
                i = _string_end(body, m.start())
                continue
            i = m.end()
            depth += 1 if c in (0x7B, 0x5B) else -1
            if depth == 0:
                return i
    m = _SCALAR_END.search(body, i)
    end = m.start() if m else len(body)
    if end == i:
        raise NotAnObject()
    return end


def decode_string(raw):
    """The text of a JSON string literal (with its quotes); lone surrogate
    escapes become U+FFFD."""
    if b"\\" not in raw:
        return raw[1:-1].decode("utf-8")
    return _LONE_SURROGATE.sub("\ufffd", json.loads(raw))


def encode_string(text):
    """The canonical JSON string literal of `text` (docs/plugins.md)."""
    return json.dumps(text, ensure_ascii=False).encode("utf-8")


def find_member(body, name):
    """(start, end) of the value of the first top-level member of `body`
    named `name`, or None; raises NotAnObject."""
    i = _ws(body, 0)
    if body[i:i + 1] != b"{":
        raise NotAnObject()
    i = _ws(body, i + 1)
    if body[i:i + 1] == b"}":
        return None
    while True:
        if body[i:i + 1] != b'"':
            raise NotAnObject()
        key_end = _string_end(body, i)
        key = decode_string(body[i:key_end])
        i = _ws(body, key_end)
        if body[i:i + 1] != b":":
            raise NotAnObject()
        start = _ws(body, i + 1)
        end = _value_end(body, start)
        if key == name:
            return start, end
        i = _ws(body, end)
        c = body[i:i + 1]
        if c == b"}":
            return None
        if c != b",":
            raise NotAnObject()
        i = _ws(body, i + 1)


class Redactor:
    """One filter instance: the config and the running total of masks."""

    def __init__(self, config):
        self.config = config
        self.total = 0

    def might_mask(self, body):
        """False when nothing in `body` can be masked, judged on the raw bytes
        at C speed: most records have no `@`, no long digit run and no
        escape (through which either could hide)."""
        if b"\\" in body:
            return True
        email = self.config.email is not None and (not self.config.email_needs_at or b"@" in body)
        return email or (self.config.cards and _CARD_BYTES.search(body) is not None)

    def redact(self, body):
        """(new body or None when unchanged, e-mails, cards); raises NotAnObject."""
        if not self.might_mask(body):
            return None, 0, 0
        span = find_member(body, self.config.field)
        if span is None or body[span[0]] != 0x22:
            return None, 0, 0
        start, end = span
        text, emails, cards = redact_text(decode_string(body[start:end]), self.config)
        if emails + cards == 0:
            return None, 0, 0
        new = body[:start] + encode_string(text) + body[end:]
        self.total += emails + cards
        if self.config.total_field is not None:
            close = new.rindex(b"}")
            new = b"%s,\"%s\":%d%s" % (new[:close], self.config.total_field.encode("utf-8"), self.total, new[close:])
        return new, emails, cards

    def snapshot(self):
        return str(self.total).encode("ascii")

    def restore(self, state):
        if not state:
            return
        if not state.isdigit():
            raise ValueError("state is not a decimal count of masks")
        self.total = int(state)
