// End-to-end tests of the Weir console in headless Chromium (Debian's, via
// playwright-core and `executablePath`), against the real `weir` running
// configs/quickstart-console.yaml and fed generated app traffic over HTTP.
// Screenshots of each view go to $WEIR_SCREENSHOTS (default
// target/console-screenshots). Run by `just test-browser` (tests/browser/run.sh).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const WEIR = process.env.WEIR_BIN || join(REPO, 'target/release/weir');
const CHROMIUM = process.env.WEIR_CHROMIUM || '/usr/bin/chromium';
const SHOTS = process.env.WEIR_SCREENSHOTS || join(REPO, 'target/console-screenshots');
// The flags this machine's Chromium needs: no sandbox as root, and no
// background connections (the network is closed); playwright adds a fresh
// --user-data-dir and --headless.
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];
const WAIT = { timeout: 30_000 };

let weir;
let browser;
let page;
let admin;
let ingest;
let out;
let log = '';

const freePort = () => new Promise((ok) => {
  const server = createServer().listen(0, '127.0.0.1', () => {
    const { port } = server.address();
    server.close(() => ok(port));
  });
});

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

async function until(what, check, timeout = 30_000) {
  const end = Date.now() + timeout;
  for (;;) {
    try {
      if (await check()) return;
    } catch { /* not yet */ }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${log.slice(-2000)}`);
    await sleep(100);
  }
}

/** App chunks from `weir generate`: 16 minutes, iOS payments slow from minute 4 to 9. */
function chunks(count) {
  const text = execFileSync(WEIR, ['generate', '--chunks', String(count), '--statements', '20', '--slow', 'pay@ios=4m..9m']);
  return text.toString().split('\n').filter(Boolean);
}

async function post(lines) {
  const response = await fetch(ingest, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson' },
    body: `${lines.join('\n')}\n`,
  });
  assert.equal(response.status, 200, await response.text());
}

/** Post chunks one request at a time, `pause` ms apart, so windows close while the page watches. */
async function feed(lines, pause) {
  for (const line of lines) {
    await post([line]);
    await sleep(pause);
  }
}

async function shot(name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  out = mkdtempSync(join(tmpdir(), 'weir-console-'));
  const [adminPort, httpPort] = [await freePort(), await freePort()];
  admin = `http://127.0.0.1:${adminPort}`;
  ingest = `http://127.0.0.1:${httpPort}/ingest`;
  weir = spawn(WEIR, ['run', '-c', join(REPO, 'configs/quickstart-console.yaml')], {
    env: {
      ...process.env,
      ADMIN_ADDRESS: `127.0.0.1:${adminPort}`,
      HTTP_ADDRESS: `127.0.0.1:${httpPort}`,
      OUT_DIR: out,
      RUST_LOG: 'warn',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  weir.stderr.on('data', (data) => { log += data; });
  await until('weir to be ready', async () => (await fetch(`${admin}/ready`)).ok, 60_000);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
  page = await browser.newPage({ viewport: { width: 1440, height: 960 } });
  page.on('pageerror', (error) => { log += `page error: ${error.message}\n`; });
});

after(async () => {
  await browser?.close();
  weir?.kill('SIGTERM');
  rmSync(out, { recursive: true, force: true });
});

test('the playground runs pasted statements through the real extract, shows groups and typed values, and marks an invalid regex', async () => {
  await page.goto(`${admin}/console/#playground`);
  const rules = page.locator('#pg-rules > li');
  await until('the running rules to load', async () => (await rules.count()) === 3);

  await page.fill('#pg-statements', [
    '2026-11-22T10:00:00Z txn=pay status=OK resp_ms=231',
    'no metric in this one',
    '2026-11-22T10:00:01Z page=home load=1017ms render=57ms',
  ].join('\n'));
  const ms = page.locator('#pg-results > li').first().locator('mark[data-group="ms"]');
  await ms.waitFor(WAIT);
  assert.equal(await ms.textContent(), '231');
  assert.equal(await page.locator('#pg-results > li').first().locator('mark[data-group="txn"]').textContent(), 'pay');
  const value = page.locator('#pg-results > li').first().locator('td.value');
  assert.equal(await value.textContent(), '231 (integer)');
  assert.equal(await page.locator('#pg-results > li').first().locator('td.labels').textContent(), 'app_version=4.2.1, os=ios, txn=pay');
  assert.equal(await page.locator('#pg-results > li').nth(1).locator('.nomatch').textContent(), 'No rule matched.');
  assert.equal(await page.locator('#pg-results > li').nth(2).locator('td.value').textContent(), '1017 ms (duration)');

  // Edit the rule: a float now.
  await page.selectOption('[data-field="rules[0].value.type"]', 'float');
  await until('the typed value to follow', async () => (await value.textContent()) === '231 (float)');

  // An invalid pattern: the plugin's error, its position marked.
  const pattern = page.locator('[data-field="rules[0].pattern"]');
  const good = await pattern.inputValue();
  await pattern.fill('txn=(?P<txn>\\w+ status');
  const marker = page.locator('.pattern-error mark.error-position');
  await marker.waitFor(WAIT);
  assert.equal(await marker.getAttribute('title'), 'position 4');
  assert.match(await page.locator('#pg-error').textContent(), /rules\[0\]\.pattern: unclosed group at 4/);
  assert.equal(await pattern.getAttribute('aria-invalid'), 'true');
  await shot('playground-invalid-regex');

  await pattern.fill(good);
  await ms.waitFor(WAIT);
  assert.equal(await marker.count(), 0);
  await page.click('#pg-export');
  const yaml = await page.locator('#pg-yaml').textContent();
  assert.match(yaml, /- type: extract\n {4}match: mobile\.statements\n {4}config:/);
  assert.ok(yaml.includes("- metric: response_time_ms\n          pattern: 'txn=(?P<txn>\\w+) status=(?P<status>\\w+) resp_ms=(?P<ms>\\d+)'"), yaml);
  assert.ok(yaml.includes('type: float'), yaml);
  await shot('playground');

  // Apply through a hot reload, and see its answer.
  await page.click('#pg-apply');
  const answer = page.locator('#pg-apply-answer');
  await until('the reload answer', async () => (await answer.textContent()).includes('"reloaded": true'));
  assert.match(await answer.textContent(), /"modified": \[\s*"extract"\s*\]/);
});

test('a chart updates as windows close, and an alert marker appears when the threshold fires and clears when it resolves', async () => {
  await page.goto(`${admin}/console/#windows`);
  const lines = chunks(240);
  // The first minutes, then the rest paced while the page watches.
  await post(lines.slice(0, 30));
  const chart = page.locator('.chart').first();
  await chart.waitFor(WAIT);
  const windows = async () => page.locator('.chart').first().locator('.windows button').count();
  const before = await windows();
  const feeding = feed(lines.slice(30), 60);
  await until('a window to close on the chart', async () => (await windows()) > before);

  const firing = page.locator('.alert[data-state="firing"][data-alertname="PaymentLatencyHigh"]');
  await firing.first().waitFor(WAIT);
  assert.match(await firing.first().textContent(), /PaymentLatencyHigh \(p95 > 800\): firing since 10:0\d:00/);
  await shot('windows-firing');
  await feeding;
  await until('every alert to resolve', async () => (await firing.count()) === 0
    && (await page.locator('.alert[data-state="resolved"]').count()) > 0);
  assert.match(await page.locator('.alert[data-state="resolved"]').first().textContent(), /fired 10:0\d:00, resolved 10:\d\d:00/);
  await shot('windows');
  await page.click('#theme');
  await shot('windows-dark');
  await page.click('#theme');
});

test("a window's samples open, the pipeline view's counters move, dead letters show their reasons, and a reload shows its result", async () => {
  await page.goto(`${admin}/console/#windows`);
  const slow = page.locator('.chart').filter({ has: page.locator('.alert') }).first();
  await slow.waitFor(WAIT);
  await slow.locator('.windows button').last().click();
  const samples = page.locator('#win-samples-list .sample');
  await samples.first().waitFor(WAIT);
  assert.match(await page.locator('#win-samples-summary').textContent(), /sample statements of \d+ seen by extract/);
  assert.match(await samples.first().locator('code').textContent(), /txn=pay status=\w+ resp_ms=\d+/);

  await page.goto(`${admin}/console/#pipeline`);
  const extractIn = page.locator('[data-counter="filters.extract.in"]');
  await extractIn.waitFor(WAIT);
  const seen = Number(await extractIn.textContent());
  assert.ok(seen >= 4800, `extract took ${seen}`);
  await post(chunks(3));
  await until('the counter to move', async () => Number(await extractIn.textContent()) === seen + 60);
  assert.equal(await page.locator('.node.filter').count(), 4);
  assert.match(await page.locator('.node.filter[data-name="extract"]').textContent(), /limits: deadline 1000 ms, memory 256 MiB/);

  await post(['{"app":"shop","logs":17}']);
  const letter = page.locator('#pl-dead-letters tr').first();
  await until('the dead letter', async () => (await letter.textContent()).includes('expected an array or a string, found a number'));
  assert.equal(await letter.locator('td').nth(1).textContent(), 'filter split');

  await page.click('#pl-reload');
  const answer = page.locator('#pl-reload-answer');
  await until('the reload answer', async () => (await answer.textContent()).includes('"reloaded": true'));
  // The playground applied float values to extract; the file says integer.
  assert.match(await answer.textContent(), /"modified": \[\s*"extract"\s*\]/);
  await shot('pipeline');

  // The playground takes the last statements that reached extract.
  await page.goto(`${admin}/console/#playground`);
  await page.selectOption('#pg-source-filter', 'extract');
  await page.click('#pg-take');
  await until('taken statements', async () => (await page.inputValue('#pg-statements')).split('\n').length === 10);
  await page.locator('#pg-results > li').nth(9).waitFor(WAIT);
  assert.equal(log.includes('page error'), false, log);
});
