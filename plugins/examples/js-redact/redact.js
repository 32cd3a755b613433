// The `redact` example's logic: masks e-mail addresses and payment card
// numbers in one string member of each record's JSON body.
//
// docs/plugins.md ("The redact filter") specifies the behaviour; every
// language's example implements it byte for byte. This module imports
// nothing from the WIT world, so it also runs, and is tested, under Node.

export const DEFAULT_FIELD = 'message';
export const DEFAULT_MASK = '[REDACTED]';
export const DEFAULT_EMAIL_PATTERN = '[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}';

// A card is 13 to 19 digits that pass the Luhn check.
const CARD_MIN_DIGITS = 13;
const CARD_MAX_DIGITS = 19;

// A run: ASCII digits with at most one space or dash between two digits.
// Only runs of 13 digits or more can hold a card; the regex skips the rest
// (a shorter run fails from every start inside it, so matches are whole runs).
const RUN = /[0-9](?:[ -]?[0-9]){12,}/g;
const GROUP = /[0-9]+/g;
// 13 digits in a run anywhere in a body: it may hold a card.
const CARD_ANYWHERE = /[0-9](?:[ -]?[0-9]){12}/;
const WS = /[ \t\r\n]*/y;
const STRING = /"(?:[^"\\]|\\[\s\S])*"/y;
const NESTED = /[\[\]{}"]/g;
const SCALAR_END = /[ \t\r\n,}\]]/g;
const BAD_NAME = /["\\\u0000-\u001f]/;

const KEYS = ['field', 'mask', 'email_pattern', 'emails', 'cards', 'total_field'];

/** A bad `config:` block: `field` names the key (undefined: the whole block). */
export class ConfigError {
  constructor(field, message) {
    this.field = field;
    this.message = message;
  }
}

/** The body's top level is not a JSON object this filter can scan. */
export class NotAnObject extends Error {}

/** The validated config from the JSON text of the `config:` block; throws ConfigError. */
export function parseConfig(text) {
  let raw;
  try {
    raw = JSON.parse(text);
  } catch {
    raw = undefined;
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(undefined, 'config is not a json object');
  }
  for (const key of Object.keys(raw)) {
    if (!KEYS.includes(key)) throw new ConfigError(key, 'unknown key');
  }
  const string = (key, fallback) => {
    const value = key in raw ? raw[key] : fallback;
    if (typeof value !== 'string') throw new ConfigError(key, 'expected a string');
    return value;
  };
  const boolean = (key) => {
    const value = key in raw ? raw[key] : true;
    if (typeof value !== 'boolean') throw new ConfigError(key, 'expected true or false');
    return value;
  };
  const field = string('field', DEFAULT_FIELD);
  if (field === '') throw new ConfigError('field', 'must not be empty');
  const mask = string('mask', DEFAULT_MASK);
  const pattern = string('email_pattern', DEFAULT_EMAIL_PATTERN);
  if (pattern === '') throw new ConfigError('email_pattern', 'must not be empty');
  let email;
  try {
    email = new RegExp(pattern, 'gu');
  } catch (e) {
    throw new ConfigError('email_pattern', `invalid regular expression: ${e.message}`);
  }
  const emails = boolean('emails');
  const cards = boolean('cards');
  const totalField = raw.total_field ?? null;
  if (totalField !== null) {
    if (typeof totalField !== 'string') throw new ConfigError('total_field', 'expected a string or null');
    if (totalField === '') throw new ConfigError('total_field', 'must not be empty');
    if (BAD_NAME.test(totalField)) {
      throw new ConfigError('total_field', 'must not contain quotes, backslashes or control characters');
    }
    if (totalField === field) throw new ConfigError('total_field', 'must differ from field');
  }
  // The default pattern matches nothing without an `@`: text without one skips the regex.
  return { field, mask, email: emails ? email : null, emailNeedsAt: pattern === DEFAULT_EMAIL_PATTERN, cards, totalField };
}

/** Whether a string of ASCII digits passes the Luhn check. */
export function luhn(digits) {
  let total = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    total += d;
  }
  return total % 10 === 0;
}

/** [text with each card masked, how many]. */
export function maskCards(text, mask) {
  let out = '';
  let last = 0;
  let count = 0;
  for (const run of text.matchAll(RUN)) {
    const groups = [...run[0].matchAll(GROUP)].map((g) => [run.index + g.index, run.index + g.index + g[0].length]);
    let a = 0;
    while (a < groups.length) {
      let best = -1;
      let digits = '';
      for (let b = a; b < groups.length; b++) {
        digits += text.slice(groups[b][0], groups[b][1]);
        if (digits.length > CARD_MAX_DIGITS) break;
        if (digits.length >= CARD_MIN_DIGITS && luhn(digits)) best = b;
      }
      if (best < 0) {
        a++;
        continue;
      }
      out += text.slice(last, groups[a][0]) + mask;
      last = groups[best][1];
      count++;
      a = best + 1;
    }
  }
  return [out + text.slice(last), count];
}

/** [text, e-mails masked, cards masked]. */
export function redactText(text, config) {
  let emails = 0;
  if (config.email !== null && (!config.emailNeedsAt || text.includes('@'))) {
    let out = '';
    let last = 0;
    for (const m of text.matchAll(config.email)) {
      if (m[0].length === 0) continue;
      out += text.slice(last, m.index) + config.mask;
      last = m.index + m[0].length;
      emails++;
    }
    text = out + text.slice(last);
  }
  let cards = 0;
  if (config.cards) [text, cards] = maskCards(text, config.mask);
  return [text, emails, cards];
}

function ws(body, i) {
  WS.lastIndex = i;
  WS.test(body);
  return WS.lastIndex;
}

/** End (exclusive) of the JSON string starting at body[i] === '"'. */
function stringEnd(body, i) {
  STRING.lastIndex = i;
  if (!STRING.test(body)) throw new NotAnObject();
  return STRING.lastIndex;
}

/** End (exclusive) of the JSON value starting at body[i]. */
function valueEnd(body, i) {
  const c = body[i];
  if (c === undefined) throw new NotAnObject();
  if (c === '"') return stringEnd(body, i);
  if (c === '{' || c === '[') {
    let depth = 0;
    for (;;) {
      NESTED.lastIndex = i;
      const m = NESTED.exec(body);
      if (m === null) throw new NotAnObject();
      if (m[0] === '"') {
        i = stringEnd(body, m.index);
        continue;
      }
      i = m.index + 1;
      depth += m[0] === '{' || m[0] === '[' ? 1 : -1;
      if (depth === 0) return i;
    }
  }
  SCALAR_END.lastIndex = i;
  const m = SCALAR_END.exec(body);
  const end = m === null ? body.length : m.index;
  if (end === i) throw new NotAnObject();
  return end;
}

/** The text of a JSON string literal (with its quotes); lone surrogate escapes become U+FFFD. */
export function decodeString(literal) {
  if (!literal.includes('\\')) return literal.slice(1, -1);
  return JSON.parse(literal).toWellFormed();
}

/** [start, end] of the value of the first top-level member of `body` named `name`, or null; throws NotAnObject. */
export function findMember(body, name) {
  let i = ws(body, 0);
  if (body[i] !== '{') throw new NotAnObject();
  i = ws(body, i + 1);
  if (body[i] === '}') return null;
  for (;;) {
    if (body[i] !== '"') throw new NotAnObject();
    const keyEnd = stringEnd(body, i);
    const key = decodeString(body.slice(i, keyEnd));
    i = ws(body, keyEnd);
    if (body[i] !== ':') throw new NotAnObject();
    const start = ws(body, i + 1);
    const end = valueEnd(body, start);
    if (key === name) return [start, end];
    i = ws(body, end);
    if (body[i] === '}') return null;
    if (body[i] !== ',') throw new NotAnObject();
    i = ws(body, i + 1);
  }
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** One filter instance: the config and the running total of masks. */
export class Redactor {
  constructor(config) {
    this.config = config;
    this.total = 0;
  }

  /**
   * False when nothing in `body` can be masked, judged on the whole text by
   * the engine's native code: most records have no `@`, no long digit run
   * and no escape (through which either could hide).
   */
  mightMask(body) {
    if (body.includes('\\')) return true;
    const { email, emailNeedsAt, cards } = this.config;
    return (email !== null && (!emailNeedsAt || body.includes('@'))) || (cards && CARD_ANYWHERE.test(body));
  }

  /** [new body or null when unchanged, e-mails, cards]; throws NotAnObject. */
  redact(bytes) {
    const body = decoder.decode(bytes);
    if (!this.mightMask(body)) return [null, 0, 0];
    const span = findMember(body, this.config.field);
    if (span === null || body[span[0]] !== '"') return [null, 0, 0];
    const [start, end] = span;
    const [text, emails, cards] = redactText(decodeString(body.slice(start, end)), this.config);
    if (emails + cards === 0) return [null, 0, 0];
    let out = body.slice(0, start) + JSON.stringify(text) + body.slice(end);
    this.total += emails + cards;
    if (this.config.totalField !== null) {
      const close = out.lastIndexOf('}');
      out = `${out.slice(0, close)},"${this.config.totalField}":${this.total}${out.slice(close)}`;
    }
    return [encoder.encode(out), emails, cards];
  }

  snapshot() {
    return encoder.encode(String(this.total));
  }

  restore(state) {
    if (state.length === 0) return;
    const text = decoder.decode(state);
    if (!/^[0-9]+$/.test(text)) throw new Error('state is not a decimal count of masks');
    this.total = Number(text);
  }
}
