// `{{name}}`: a Weir filter in JavaScript. It marks every record with
// `"seen_by": "{{name}}"` and drops the records whose `level` is the
// configured `drop_level`; a body that is not a JSON object is rejected
// (dead-lettered with the reason).
//
// componentize-js builds the component from this module and
// wit/filter.wit (build.sh). The module exports the `plugin` interface as
// the object `plugin`; a WIT `result` error is thrown, and a thrown
// non-Error value becomes the `err` payload.
import { counterAdd } from 'weir:filter/host@{{contract}}';

// Spliced before a body's closing brace, so the rest of it is passed on
// byte for byte rather than parsed and written again.
const SEEN_BY = new TextEncoder().encode('"seen_by":"{{name}}"');
const decoder = new TextDecoder();

// The `config:` block, set by configure: records whose `level` is this are dropped.
let dropLevel = null;
let configured = false;

// The drop level of a `config:` block; throws a WIT config-error naming the key.
export function parseConfig(text) {
  const config = JSON.parse(text);
  for (const key of Object.keys(config)) {
    if (key !== 'drop_level') throw { field: key, message: 'unknown key; the only key is drop_level' };
  }
  const level = config.drop_level ?? null;
  if (level !== null && typeof level !== 'string') {
    throw { field: 'drop_level', message: `expected a string, found ${JSON.stringify(level)}` };
  }
  return level;
}

const isSpace = (byte) => byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d;

// `body` (a JSON object's bytes) with SEEN_BY spliced in.
export function mark(body) {
  let end = body.length - 1;
  while (isSpace(body[end])) end--;
  let before = end - 1;
  while (isSpace(body[before])) before--;
  const comma = body[before] === 0x7b ? 0 : 1; // no comma after `{`
  const out = new Uint8Array(end + comma + SEEN_BY.length + 1);
  out.set(body.subarray(0, end));
  if (comma) out[end] = 0x2c;
  out.set(SEEN_BY, end + comma);
  out[out.length - 1] = 0x7d;
  return out;
}

export const plugin = {
  configure(config) {
    dropLevel = parseConfig(config);
    configured = true;
  },

  process(events) {
    if (!configured) throw 'process called before configure';
    const emitted = [];
    const rejected = [];
    let dropped = 0;
    events.forEach((event, index) => {
      let fields;
      try {
        fields = JSON.parse(decoder.decode(event.body));
      } catch {
        fields = null;
      }
      if (fields === null || typeof fields !== 'object' || Array.isArray(fields)) {
        rejected.push({ index, reason: 'body is not a JSON object' });
        return;
      }
      if (dropLevel !== null && fields.level === dropLevel) {
        // Neither emitted nor rejected: acknowledged as consumed.
        dropped++;
        return;
      }
      event.body = mark(event.body);
      emitted.push({ parent: index, event });
    });
    // Once per call, never per record.
    counterAdd('dropped', BigInt(dropped));
    return { emitted, rejected };
  },

  tick(_now) {
    // No timers: nothing to emit without input.
    return [];
  },

  snapshot() {
    // No state to hand over across a reload.
    return new Uint8Array();
  },

  restore(_state) {},
};
