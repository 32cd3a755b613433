// The pipeline view: inputs -> filters (in chain order) -> outputs, each
// with its settings and live counters (updated by the stream's `stats`
// every second), the last dead letters with their reasons, and a reload.

import { api } from './api.js';

const $ = (id) => document.getElementById(id);
const MAX_DEAD_LETTERS = 20;
let context = null;

export function init(ctx) {
  context = ctx;
  draw();
  api('/dead-letters?limit=20').then((answer) => {
    for (const letter of answer.records) addDeadLetter(letter);
  }).catch(() => {});
  ctx.bus.addEventListener('stats', (event) => counters(event.detail));
  ctx.bus.addEventListener('dead_letter', (event) => addDeadLetter(event.detail));
  ctx.bus.addEventListener('reloaded', () => draw(true));
  $('pl-reload').addEventListener('click', reload);
}

async function draw(refresh = false) {
  let p;
  try {
    p = await context.pipeline(refresh);
  } catch (error) {
    context.fail(error);
    return;
  }
  const column = (title, nodes) => {
    const col = document.createElement('section');
    col.className = 'column';
    col.setAttribute('aria-label', title);
    const h = document.createElement('h3');
    h.textContent = title;
    col.append(h, ...nodes);
    return col;
  };
  const arrow = (text) => Object.assign(document.createElement('div'), { className: 'arrow', textContent: text });
  const queue = node('queue', 'queue 1', 'between inputs and filters', [['depth', 'queue.depth', `${p.queue.depth}/${p.queue.capacity}`]]);
  $('pl-graph').replaceChildren(
    column('Inputs', p.inputs.map((i) => node('input', i.name, `${i.type} · tag ${i.tag}`, [
      ['records', `inputs.${i.name}.records`, i.counters.records],
      ['dead-lettered', `inputs.${i.name}.dead_letters`, i.counters.dead_letters],
    ]))),
    arrow('→'),
    column('Filters', [queue, ...p.filters.flatMap((f, n) => [
      arrow('↓'),
      node('filter', f.name, `match ${f.match.join(', ')}`, [
        ['in', `filters.${f.name}.in`, f.counters.in],
        ['out', `filters.${f.name}.out`, f.counters.out],
        ['dead-lettered', `filters.${f.name}.dead_letters`, f.counters.dead_letters],
        ['restarts', `filters.${f.name}.restarts`, f.counters.restarts],
      ], [
        `plugin ${f.plugin.split('/').pop()} · sha256 ${f.digest ? f.digest.slice(0, 12) : 'unreadable'}`,
        `limits: deadline ${f.limits.deadline_ms} ms, memory ${(f.limits.memory_bytes / 1048576).toFixed(0)} MiB`,
        `grants: ${grants(f.grants)}`,
      ], n),
    ])]),
    arrow('→'),
    column('Outputs', p.outputs.map((o) => node('output', o.name, `${o.type} · match ${o.match.join(', ')}`, [
      ['delivered', `outputs.${o.name}.records`, o.counters.records],
      ['retries', `outputs.${o.name}.retries`, o.counters.retries],
      ['dead-lettered', `outputs.${o.name}.dead_letters`, o.counters.dead_letters],
      ['queue', `outputs.${o.name}.queue`, `${o.queue.depth}/${o.queue.capacity}`],
    ], o.elasticsearch ? [`${o.elasticsearch.hosts.join(', ')} · index ${o.elasticsearch.index}`] : []))),
  );
}

function grants(g) {
  const parts = [];
  if (g.env.length) parts.push(`env ${g.env.join(', ')}`);
  if (g.dirs.length) parts.push(`dirs ${g.dirs.map((d) => `${d.guest}${d.writable ? ' (rw)' : ''}`).join(', ')}`);
  if (g.wall_clock) parts.push('wall clock');
  if (g.network) parts.push('network');
  return parts.join(', ') || 'none';
}

function node(kind, name, subtitle, stats, details = [], position) {
  const card = document.createElement('article');
  card.className = `node ${kind}`;
  card.dataset.name = name;
  const h = document.createElement('h4');
  h.textContent = position === undefined ? name : `${position + 1}. ${name}`;
  const sub = document.createElement('p');
  sub.className = 'hint';
  sub.textContent = subtitle;
  const dl = document.createElement('dl');
  for (const [label, path, value] of stats) {
    const dt = document.createElement('dt');
    dt.textContent = label;
    const dd = document.createElement('dd');
    dd.dataset.counter = path;
    dd.textContent = value;
    dl.append(dt, dd);
  }
  card.append(h, sub, dl, ...details.map((d) => Object.assign(document.createElement('p'), { className: 'detail', textContent: d })));
  return card;
}

function counters(stats) {
  const set = (path, value) => {
    const el = document.querySelector(`#pl-graph [data-counter="${CSS.escape(path)}"]`);
    if (el && el.textContent !== String(value)) el.textContent = value;
  };
  const queue = (q) => `${q.depth}/${q.capacity}`;
  set('queue.depth', queue(stats.queue));
  for (const [group, items] of Object.entries({ inputs: stats.inputs, filters: stats.filters, outputs: stats.outputs })) {
    for (const [name, values] of Object.entries(items)) {
      for (const [key, value] of Object.entries(values)) {
        set(`${group}.${name}.${key}`, key === 'queue' ? queue(value) : value);
      }
    }
  }
}

function addDeadLetter(letter) {
  const envelope = letter.body || {};
  const tr = document.createElement('tr');
  const record = typeof envelope.record === 'string' ? envelope.record : JSON.stringify(envelope.record);
  for (const text of [new Date(letter.time).toISOString().slice(11, 23), envelope.stage, envelope.reason, record]) {
    const td = document.createElement('td');
    td.textContent = text ?? '';
    tr.append(td);
  }
  tr.lastElementChild.className = 'record';
  const body = $('pl-dead-letters');
  body.prepend(tr);
  while (body.rows.length > MAX_DEAD_LETTERS) body.deleteRow(-1);
}

async function reload() {
  $('pl-status').textContent = 'Reloading…';
  let answer;
  try {
    answer = await api('/reload', { method: 'POST', body: {} });
  } catch (error) {
    answer = error.body || { error: error.message };
  }
  const pre = $('pl-reload-answer');
  pre.textContent = JSON.stringify(answer, null, 2);
  pre.hidden = false;
  $('pl-status').textContent = answer.reloaded ? 'Reloaded.' : 'The reload was refused; the running pipeline is unchanged.';
  if (answer.reloaded) context.bus.dispatchEvent(new CustomEvent('reloaded'));
}
