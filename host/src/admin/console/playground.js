// The rule playground: statements and `extract` rules in, the real plugin's
// answer out (`POST /api/v1/filters/{name}/test`, with `explain: true` so
// each metric record says where its rule matched). This page knows
// extract's config and record shapes; the host does not.

import { api } from './api.js';
import { toYaml } from './yaml.js';

const $ = (id) => document.getElementById(id);
const DEBOUNCE_MS = 300;
const TYPES = ['integer', 'float', 'duration'];
const UNITS = ['ns', 'us', 'ms', 's', 'm', 'h'];

/** The config block being edited, less `rules` (kept from a loaded filter). */
let base = {};
let rules = [];
let filters = [];
let timer = null;
let generation = 0;
let context = null;

/** An extract-shaped filter: rules with patterns. */
const isExtract = (f) => Array.isArray(f.config?.rules) && f.config.rules.every((r) => typeof r?.pattern === 'string');

export function init(ctx) {
  context = ctx;
  $('pg-add-rule').addEventListener('click', () => {
    rules.push({ metric: 'metric', pattern: '(?P<value>\\d+)', value: { group: 'value', type: 'integer' } });
    renderRules();
    schedule();
    $('pg-rules').lastElementChild?.querySelector('input')?.focus();
  });
  $('pg-load').addEventListener('click', () => load(ctx));
  $('pg-take').addEventListener('click', () => take());
  $('pg-test').addEventListener('click', () => test());
  $('pg-export').addEventListener('click', exportYaml);
  $('pg-apply').addEventListener('click', apply);
  for (const id of ['pg-statements', 'pg-context', 'pg-source']) $(id).addEventListener('input', schedule);
  $('pg-mode').addEventListener('change', schedule);
  $('pg-filter').addEventListener('change', () => load(ctx));
  ctx.bus.addEventListener('reloaded', () => ctx.pipeline(true).then(fillFilters).catch(() => {}));
  ctx.pipeline().then((p) => {
    fillFilters(p);
    return load(ctx);
  }).catch((e) => ctx.fail(e));
}

function fillFilters(pipeline) {
  filters = pipeline.filters;
  const fill = (select, list, pick) => {
    const current = select.value;
    select.replaceChildren(...list.map((f) => new Option(f.name, f.name)));
    select.value = list.some((f) => f.name === current) ? current : pick;
  };
  const extracts = filters.filter(isExtract);
  fill($('pg-filter'), extracts.length ? extracts : filters, (extracts[0] || filters[0])?.name);
  fill($('pg-source-filter'), filters, $('pg-filter').value);
}

/** Load the chosen filter's running rules. */
async function load(ctx) {
  const pipeline = await ctx.pipeline();
  const filter = pipeline.filters.find((f) => f.name === $('pg-filter').value);
  if (!filter) return;
  const { rules: loaded = [], ...rest } = structuredClone(filter.config || {});
  base = rest;
  rules = loaded;
  $('pg-source').value = base.source || 'message';
  $('pg-mode').value = base.mode || 'first';
  $('pg-source-filter').value = filter.name;
  renderRules();
  $('pg-status').textContent = `Loaded ${rules.length} rules of ${filter.name}.`;
  schedule();
}

/** Fill the statements with the last records that reached a filter. */
async function take() {
  const filter = $('pg-source-filter').value;
  const count = Math.max(1, Math.min(200, Number($('pg-count').value) || 10));
  try {
    const answer = await api(`/filters/${encodeURIComponent(filter)}/samples?limit=${count}`);
    $('pg-statements').value = answer.records.map((r) => JSON.stringify(r.body)).join('\n');
    $('pg-status').textContent = answer.records.length
      ? `Took ${answer.records.length} records that reached ${filter}.`
      : `No records have reached ${filter} yet.`;
    schedule();
  } catch (error) {
    showError(error.message);
  }
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(test, DEBOUNCE_MS);
}

/** The config block as edited; `explain` only for test runs. */
function config(explain) {
  const block = { ...base, source: $('pg-source').value || 'message', mode: $('pg-mode').value, rules };
  if (block.mode === 'first' && !('mode' in base)) delete block.mode;
  if (block.source === 'message' && !('source' in base)) delete block.source;
  delete block.explain;
  if (explain) block.explain = true;
  return block;
}

/** The records to test: JSON lines as they are, plain lines under the source field. */
function records() {
  let context = {};
  try {
    context = JSON.parse($('pg-context').value || '{}');
  } catch {
    throw new Error('the added fields are not a JSON object');
  }
  const source = ($('pg-source').value || 'message').split('.')[0];
  return $('pg-statements').value.split('\n').filter((l) => l.trim()).map((line) => {
    try {
      const body = JSON.parse(line);
      if (body && typeof body === 'object' && !Array.isArray(body)) return { body };
    } catch { /* a plain statement */ }
    return { body: { ...context, [source]: line } };
  });
}

async function test() {
  clearTimeout(timer);
  const run = ++generation;
  const filter = $('pg-filter').value;
  if (!filter) return;
  let input;
  try {
    input = records();
  } catch (error) {
    showError(error.message);
    return;
  }
  markInvalid(null);
  try {
    const answer = await api(`/filters/${encodeURIComponent(filter)}/test`, {
      method: 'POST',
      body: { config: config(true), records: input },
    });
    if (run !== generation) return;
    showError(null);
    renderResults(input, answer);
    $('pg-status').textContent = `Tested ${input.length} statements in ${answer.took_ms.toFixed(1)} ms.`;
  } catch (error) {
    if (run !== generation) return;
    const detail = error.body?.error || {};
    if (detail.kind === 'config') {
      showError(`${filter} refused the rules: ${detail.field ? `${detail.field}: ` : ''}${detail.message}`);
      markInvalid(detail.field, detail.message);
    } else {
      showError(error.message);
    }
    $('pg-results').replaceChildren();
  }
}

function showError(text) {
  $('pg-error').textContent = text || '';
  $('pg-error').hidden = !text;
}

/** Mark the input the plugin blamed; for a pattern, show where. */
function markInvalid(field, message) {
  for (const el of document.querySelectorAll('#pg-rules [aria-invalid]')) el.removeAttribute('aria-invalid');
  for (const el of document.querySelectorAll('#pg-rules .pattern-error')) el.remove();
  if (!field) return;
  const input = document.querySelector(`#pg-rules [data-field="${CSS.escape(field)}"]`);
  if (!input) return;
  input.setAttribute('aria-invalid', 'true');
  const at = /\bat (\d+)$/.exec(message || '');
  if (field.endsWith('.pattern') && at) {
    const chars = Array.from(input.value);
    const pos = Math.min(Number(at[1]), chars.length);
    const box = document.createElement('pre');
    box.className = 'pattern-error';
    box.setAttribute('role', 'alert');
    box.id = `${input.id}-error`;
    const mark = document.createElement('mark');
    mark.className = 'error-position';
    mark.textContent = chars[pos] ?? ' ';
    mark.title = `position ${pos}`;
    box.append(chars.slice(0, pos).join(''), mark, chars.slice(pos + 1).join(''), `\n${' '.repeat(pos)}^ ${message}`);
    input.setAttribute('aria-describedby', box.id);
    input.closest('li').append(box);
  }
}

function field(label, path, value, onInput, { size = 12, list } = {}) {
  const wrap = document.createElement('label');
  wrap.append(label, ' ');
  let input;
  if (list) {
    input = document.createElement('select');
    input.append(...list.map((v) => new Option(v || '(none)', v)));
    input.value = value ?? '';
    input.addEventListener('change', () => { onInput(input.value); schedule(); });
  } else {
    input = document.createElement('input');
    input.type = 'text';
    input.spellcheck = false;
    input.size = size;
    input.value = value ?? '';
    input.addEventListener('input', () => { onInput(input.value); schedule(); });
  }
  input.dataset.field = path;
  input.id = `pg-${path.replace(/[^a-z0-9]/gi, '-')}`;
  wrap.append(input);
  return wrap;
}

const csv = (text) => text.split(',').map((s) => s.trim()).filter(Boolean);
const labelField = (f) => (typeof f === 'string' ? f : f.from === f.to || !f.to ? f.from : `${f.from}:${f.to}`);
const parseLabelField = (text) => {
  const [from, to] = text.split(':');
  return to ? { from, to } : from;
};

function renderRules() {
  const list = $('pg-rules');
  list.replaceChildren(...rules.map((rule, i) => {
    const at = `rules[${i}]`;
    rule.value ||= {};
    rule.labels ||= {};
    const li = document.createElement('li');
    li.className = 'rule';
    const pattern = field('Pattern', `${at}.pattern`, rule.pattern, (v) => { rule.pattern = v; }, { size: 48 });
    pattern.classList.add('wide');
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.textContent = 'Remove';
    remove.setAttribute('aria-label', `Remove rule ${i + 1}`);
    remove.addEventListener('click', () => { rules.splice(i, 1); renderRules(); schedule(); });
    li.append(
      field('Metric', `${at}.metric`, rule.metric, (v) => { rule.metric = v; }),
      pattern,
      field('Value group', `${at}.value.group`, rule.value.group, (v) => { rule.value.group = v; }, { size: 8 }),
      field('Type', `${at}.value.type`, rule.value.type, (v) => { rule.value.type = v; }, { list: TYPES }),
      field('Unit', `${at}.value.unit`, rule.value.unit, (v) => {
        if (v) rule.value.unit = v; else delete rule.value.unit;
      }, { list: ['', ...UNITS] }),
      field('Label groups', `${at}.labels.groups`, (rule.labels.groups || []).join(', '), (v) => {
        rule.labels.groups = csv(v);
      }),
      field('Label fields', `${at}.labels.fields`, (rule.labels.fields || []).map(labelField).join(', '), (v) => {
        rule.labels.fields = csv(v).map(parseLabelField);
      }, { size: 24 }),
      remove,
    );
    return li;
  }));
}

/** The value as the rule types it: `231 ms (duration)`. */
function typed(metric, rule) {
  const type = rule?.value?.type || '?';
  const unit = type === 'duration' ? ` ${rule.value.unit || 'ms'}` : '';
  return `${metric.value}${unit} (${type})`;
}

/** `text` with each match and group marked; spans in characters. */
function highlighted(text, matches) {
  const chars = Array.from(text);
  const at = chars.map(() => ({ match: false, group: null, size: Infinity }));
  for (const m of matches) {
    for (let i = m.start; i < m.end && i < chars.length; i++) at[i].match = true;
    for (const [name, [start, end]] of Object.entries(m.groups || {})) {
      for (let i = start; i < end && i < chars.length; i++) {
        if (end - start < at[i].size) Object.assign(at[i], { group: name, size: end - start });
      }
    }
  }
  const code = document.createElement('code');
  code.className = 'statement';
  let i = 0;
  while (i < chars.length) {
    let j = i + 1;
    while (j < chars.length && at[j].match === at[i].match && at[j].group === at[i].group) j++;
    const piece = chars.slice(i, j).join('');
    if (at[i].group) {
      const span = document.createElement('mark');
      span.className = `group g${hash(at[i].group) % 6}`;
      span.dataset.group = at[i].group;
      span.title = `group ${at[i].group}`;
      span.textContent = piece;
      code.append(span);
    } else if (at[i].match) {
      const span = document.createElement('span');
      span.className = 'match';
      span.textContent = piece;
      code.append(span);
    } else {
      code.append(piece);
    }
    i = j;
  }
  return code;
}

function hash(text) {
  let h = 0;
  for (const c of text) h = (h * 31 + c.codePointAt(0)) >>> 0;
  return h;
}

/** A dotted path of a body. */
const lookup = (body, path) => path.split('.').reduce((v, k) => (v && typeof v === 'object' ? v[k] : undefined), body);

function renderResults(input, answer) {
  const source = $('pg-source').value || 'message';
  $('pg-results').replaceChildren(...answer.results.map((result, i) => {
    const li = document.createElement('li');
    li.className = 'result';
    const metrics = result.emitted.map((r) => r.body).filter((b) => b && 'metric' in b && 'value' in b && b.match);
    const raw = result.emitted.find((r) => !(r.body && 'metric' in r.body && 'value' in r.body))?.body;
    const matches = metrics.map((m) => m.match);
    const text = lookup(input[i].body, matches[0]?.source || source);
    li.append(typeof text === 'string' ? highlighted(text, matches) : Object.assign(document.createElement('code'), {
      textContent: `no string field ${source}`,
    }));
    if (result.rejected) li.append(Object.assign(document.createElement('p'), { className: 'error', textContent: result.rejected }));
    const error = raw?.extract_error;
    if (error) li.append(Object.assign(document.createElement('p'), { className: 'error', textContent: error }));
    if (metrics.length === 0 && !error) {
      li.append(Object.assign(document.createElement('p'), { className: 'hint nomatch', textContent: 'No rule matched.' }));
      return li;
    }
    const table = document.createElement('table');
    table.className = 'table metrics';
    table.innerHTML = '<thead><tr><th scope="col">Rule</th><th scope="col">Metric</th><th scope="col">Value</th><th scope="col">Labels</th></tr></thead>';
    const body = document.createElement('tbody');
    for (const m of metrics) {
      const tr = document.createElement('tr');
      const cells = [
        `${m.match.rule + 1}`,
        m.metric,
        typed(m, rules[m.match.rule]),
        Object.entries(m.labels || {}).map(([k, v]) => `${k}=${v}`).join(', '),
      ];
      for (const [j, c] of cells.entries()) {
        const td = document.createElement('td');
        td.textContent = c;
        td.className = ['rule-index', 'metric', 'value', 'labels'][j];
        tr.append(td);
      }
      body.append(tr);
    }
    table.append(body);
    li.append(table);
    return li;
  }));
}

/** `object` with the keys of `order` first, in that order (the config reads that way). */
function ordered(object, order) {
  const first = order.filter((k) => k in object).map((k) => [k, object[k]]);
  return Object.fromEntries([...first, ...Object.entries(object).filter(([k]) => !order.includes(k))]);
}

function filterEntry() {
  const filter = filters.find((f) => f.name === $('pg-filter').value);
  const type = filter?.plugin?.split('/').pop().replace(/\.wasm$/, '') || 'extract';
  const entry = { type };
  if (filter && filter.name !== type) entry.name = filter.name;
  entry.match = filter?.match?.length === 1 ? filter.match[0] : filter?.match || '*';
  const block = config(false);
  block.rules = block.rules.map((r) => ordered(r, ['metric', 'pattern', 'source', 'value', 'labels']));
  entry.config = ordered(block, ['source', 'metric_tag', 'enrich_field', 'mode', 'rules']);
  return entry;
}

function exportYaml() {
  const pre = $('pg-yaml');
  pre.textContent = `filters:\n${toYaml([filterEntry()], 2)}`;
  pre.hidden = false;
  pre.focus();
}

async function apply() {
  const name = $('pg-filter').value;
  const pre = $('pg-apply-answer');
  $('pg-status').textContent = `Reloading with these rules for ${name}…`;
  let answer;
  try {
    answer = await api('/reload', { method: 'POST', body: { filters: { [name]: { config: config(false) } } } });
  } catch (error) {
    answer = error.body || { error: error.message };
  }
  pre.textContent = JSON.stringify(answer, null, 2);
  pre.hidden = false;
  $('pg-status').textContent = answer.reloaded
    ? `Applied to ${name}. The config file is unchanged: export the YAML to keep the rules.`
    : 'The reload was refused; the running pipeline is unchanged.';
  if (answer.reloaded) context.bus.dispatchEvent(new CustomEvent('reloaded'));
}
