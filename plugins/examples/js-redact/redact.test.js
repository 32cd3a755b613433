// Native tests of redact.js: `node --test` in this folder.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { ConfigError, Redactor, luhn, parseConfig } from './redact.js';

const data = new URL('../testdata/', import.meta.url);

function run(config) {
  const redactor = new Redactor(parseConfig(config));
  const lines = readFileSync(new URL('input.ndjson', data), 'utf8').split('\n').filter((l) => l !== '');
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  return lines.map((l) => {
    const [body] = redactor.redact(encoder.encode(l));
    return (body === null ? l : decoder.decode(body)) + '\n';
  }).join('');
}

test('the shared input gives the expected output with the default config', () => {
  assert.equal(run('{}'), readFileSync(new URL('expected-default.ndjson', data), 'utf8'));
});

test('the shared input gives the expected output with the custom config', () => {
  const config = readFileSync(new URL('custom.json', data), 'utf8');
  assert.equal(run(config), readFileSync(new URL('expected-custom.ndjson', data), 'utf8'));
});

test('luhn accepts test card numbers and refuses a changed digit', () => {
  assert.ok(luhn('4111111111111111'));
  assert.ok(!luhn('4111111111111112'));
});

test('a bad config names the key', () => {
  const field = (text) => {
    try {
      parseConfig(text);
    } catch (e) {
      assert.ok(e instanceof ConfigError);
      return e.field;
    }
    assert.fail(`accepted ${text}`);
  };
  assert.equal(field('{"bogus":1}'), 'bogus');
  assert.equal(field('{"mask":3}'), 'mask');
  assert.equal(field('{"cards":"yes"}'), 'cards');
  assert.equal(field('{"email_pattern":"("}'), 'email_pattern');
  assert.equal(field('{"total_field":"message"}'), 'total_field');
  assert.equal(field('[]'), undefined);
});

test('snapshot and restore carry the running total', () => {
  const a = new Redactor(parseConfig('{"total_field":"n"}'));
  a.redact(new TextEncoder().encode('{"message":"a@example.com b@example.com"}'));
  const b = new Redactor(parseConfig('{"total_field":"n"}'));
  b.restore(a.snapshot());
  const [body] = b.redact(new TextEncoder().encode('{"message":"c@example.com"}'));
  assert.equal(new TextDecoder().decode(body), '{"message":"[REDACTED]","n":3}');
  assert.throws(() => b.restore(new TextEncoder().encode('x')));
});
