// `redact` in JavaScript: the WIT glue around redact.js (componentize-js).
//
// The component exports the `plugin` interface as the object `plugin`;
// a WIT `result` error is thrown, and a thrown non-Error value becomes the
// `err` payload.
import { counterAdd } from 'weir:filter/host@0.1.0';

import { ConfigError, NotAnObject, Redactor, parseConfig } from './redact.js';

// The instance's state: set by configure, carried by snapshot/restore.
let redactor = null;

export const plugin = {
  configure(config) {
    try {
      redactor = new Redactor(parseConfig(config));
    } catch (e) {
      if (e instanceof ConfigError) throw { field: e.field, message: e.message };
      throw e;
    }
  },

  process(events) {
    if (redactor === null) throw 'process called before configure';
    const emitted = [];
    const rejected = [];
    let emails = 0;
    let cards = 0;
    events.forEach((event, index) => {
      let result;
      try {
        result = redactor.redact(event.body);
      } catch (e) {
        if (!(e instanceof NotAnObject)) throw e;
        rejected.push({ index, reason: 'body is not a json object' });
        return;
      }
      const [body, e, c] = result;
      if (body !== null) {
        event.body = body;
        emails += e;
        cards += c;
      }
      emitted.push({ parent: index, event });
    });
    // Once per call, never per record.
    counterAdd('emails', BigInt(emails));
    counterAdd('cards', BigInt(cards));
    return { emitted, rejected };
  },

  tick(_now) {
    return [];
  },

  snapshot() {
    return redactor === null ? new Uint8Array() : redactor.snapshot();
  },

  restore(state) {
    try {
      redactor.restore(state);
    } catch (e) {
      throw e.message;
    }
  },
};
