// Live windows: one chart per series of p50/p90/p95/p99 over its recent
// windows, alerts marked where they fired and resolved, and a window's
// sample statements on demand. Records come from `GET /api/v1/records`
// and then the stream, for the tags that `percentiles` and `threshold`
// emit under (read from their config blocks, with their defaults); which
// are windows and which alerts is read from their shape (`window_start`..
// and `labels.alertname`/`startsAt`), as those plugins write them.

import { api } from './api.js';

const $ = (id) => document.getElementById(id);
const QUANTILES = ['p50', 'p90', 'p95', 'p99'];
const COLORS = ['#2f7ed8', '#8e44ad', '#d35400', '#c0392b'];
const FIRING = '#d62728';
const RESOLVED = '#2ca02c';
const MAX_CHARTS = 6;
const MAX_WINDOWS = 240;
const LISTED_WINDOWS = 8;

const series = new Map();
const alerts = new Map();
const charts = new Map();
let thresholds = [];
let description = null;
let pending = null;

const canonical = (v) => (v && typeof v === 'object' && !Array.isArray(v)
  ? `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(',')}}`
  : JSON.stringify(v));
const seriesKey = (metric, labels) => `${metric} ${canonical(labels || {})}`;
const seconds = (rfc3339) => Date.parse(rfc3339) / 1000;
const clock = (rfc3339) => new Date(rfc3339).toISOString().slice(11, 19);
const labelText = (labels) => Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(', ');
const isWindow = (b) => b && typeof b.window_start === 'string' && typeof b.window_end === 'string' && 'metric' in b;
const isAlert = (b) => b && typeof b.labels?.alertname === 'string' && typeof b.startsAt === 'string';

/** The tags of window records and alerts, from percentiles- and threshold-shaped config blocks. */
export function tags(pipeline) {
  const found = new Set();
  for (const f of pipeline.filters) {
    const c = f.config || {};
    if (typeof c.window === 'string') found.add(c.tag || 'metrics.window');
    if (Array.isArray(c.rules) && c.rules.some((r) => r?.stat && r?.op)) found.add(c.tag || 'alerts');
  }
  return [...found];
}

export function init(ctx) {
  const describe = () => ctx.pipeline().then((p) => {
    description = p;
    // Threshold-shaped rules: a name, a stat, an operator and a value.
    thresholds = p.filters.flatMap((f) => (Array.isArray(f.config?.rules) ? f.config.rules : []))
      .filter((r) => r && r.name && r.stat && r.op && typeof r.value === 'number');
  });
  const load = () => api(`/records?tags=${encodeURIComponent(tags(description).join(',') || '-')}`).then((answer) => {
    for (const record of answer.records) ingest(record.body);
    schedule();
  });
  describe().then(load).catch((e) => ctx.fail(e));
  // Events were missed: read what is kept again (ingesting twice is harmless).
  ctx.bus.addEventListener('lagged', () => load().catch(() => {}));
  ctx.bus.addEventListener('records', (event) => {
    for (const record of event.detail) ingest(record.body);
    schedule();
  });
  ctx.bus.addEventListener('reloaded', () => describe().catch(() => {}));
  // Charts take their colours when drawn: redraw them in the new theme.
  ctx.bus.addEventListener('theme', () => {
    for (const chart of charts.values()) {
      chart.plot.destroy();
      chart.el.remove();
    }
    charts.clear();
    render();
  });
  $('win-metric').addEventListener('change', () => { renderLabelFilters(); render(); });
  window.addEventListener('resize', () => {
    for (const chart of charts.values()) chart.plot.setSize(size(chart.el));
  });
}

export function show() {
  // Charts drawn while hidden have no width; size them now.
  requestAnimationFrame(() => {
    for (const chart of charts.values()) chart.plot.setSize(size(chart.el));
  });
}

function ingest(body) {
  if (isWindow(body)) {
    const key = seriesKey(body.metric, body.labels);
    let s = series.get(key);
    if (!s) series.set(key, (s = { key, metric: body.metric, labels: body.labels || {}, windows: [] }));
    const at = s.windows.findIndex((w) => w.window_start === body.window_start);
    if (at >= 0) s.windows[at] = body;
    else s.windows.push(body);
    s.windows.sort((a, b) => seconds(a.window_start) - seconds(b.window_start));
    if (s.windows.length > MAX_WINDOWS) s.windows.splice(0, s.windows.length - MAX_WINDOWS);
  } else if (isAlert(body)) {
    // One entry per firing episode: the resolved record repeats startsAt.
    alerts.set(`${canonical(body.labels)} ${body.startsAt}`, body);
  }
}

function schedule() {
  if (pending) return;
  pending = setTimeout(() => {
    pending = null;
    renderMetrics();
    render();
  }, 200);
}

function alertsOf(s) {
  return [...alerts.values()].filter((a) => a.labels.metric === s.metric
    && Object.entries(s.labels).every(([k, v]) => a.labels[k] === v));
}

function ruleOf(alert) {
  return thresholds.find((r) => r.name === alert.labels.alertname);
}

function thresholdsOf(s) {
  return thresholds.filter((r) => r.metric === s.metric
    && Object.entries(r.match || {}).every(([k, v]) => s.labels[k] === v));
}

function renderMetrics() {
  const select = $('win-metric');
  const metrics = [...new Set([...series.values()].map((s) => s.metric))].sort();
  if (metrics.join() === [...select.options].map((o) => o.value).join()) return;
  const current = select.value;
  select.replaceChildren(...metrics.map((m) => new Option(m, m)));
  const alerted = thresholds.map((r) => r.metric).find((m) => metrics.includes(m));
  select.value = metrics.includes(current) ? current : alerted || metrics[0] || '';
  renderLabelFilters();
}

function renderLabelFilters() {
  const metric = $('win-metric').value;
  const holder = $('win-labels');
  const chosen = Object.fromEntries([...holder.querySelectorAll('select')].map((s) => [s.dataset.label, s.value]));
  const values = {};
  for (const s of series.values()) {
    if (s.metric !== metric) continue;
    for (const [k, v] of Object.entries(s.labels)) (values[k] ||= new Set()).add(v);
  }
  holder.replaceChildren(...Object.keys(values).sort().map((k) => {
    const label = document.createElement('label');
    const select = document.createElement('select');
    select.dataset.label = k;
    select.append(new Option('any', ''), ...[...values[k]].sort().map((v) => new Option(v, v)));
    select.value = values[k].has(chosen[k]) ? chosen[k] : '';
    select.addEventListener('change', render);
    label.append(`${k} `, select);
    return label;
  }));
}

function shown() {
  const metric = $('win-metric').value;
  const filters = [...$('win-labels').querySelectorAll('select')].filter((s) => s.value);
  const all = [...series.values()].filter((s) => s.metric === metric
    && filters.every((f) => s.labels[f.dataset.label] === f.value));
  // Series with alerts first, then those a rule watches, then by name.
  const rank = (s) => (alertsOf(s).length ? 0 : thresholdsOf(s).length ? 1 : 2);
  all.sort((a, b) => rank(a) - rank(b) || a.key.localeCompare(b.key));
  $('win-count').textContent = all.length > MAX_CHARTS
    ? `Showing ${MAX_CHARTS} of ${all.length} series: choose labels to narrow.`
    : `${all.length} series.`;
  return all.slice(0, MAX_CHARTS);
}

function size(el) {
  return { width: Math.max(320, el.clientWidth - 16), height: 220 };
}

function render() {
  const list = shown();
  const keep = new Set(list.map((s) => s.key));
  for (const [key, chart] of charts) {
    if (!keep.has(key)) {
      chart.plot.destroy();
      chart.el.remove();
      charts.delete(key);
    }
  }
  const holder = $('win-charts');
  for (const s of list) {
    const chart = charts.get(s.key) || create(s);
    holder.append(chart.el);
    update(chart, s);
  }
}

function create(s) {
  const el = document.createElement('article');
  el.className = 'chart';
  el.dataset.series = s.key;
  const title = document.createElement('h3');
  title.textContent = `${s.metric} {${labelText(s.labels)}}`;
  const plotEl = document.createElement('div');
  plotEl.className = 'plot';
  plotEl.setAttribute('role', 'img');
  plotEl.setAttribute('aria-label', `Percentiles of ${title.textContent} by window`);
  const alertList = document.createElement('ul');
  alertList.className = 'alerts';
  alertList.setAttribute('aria-label', 'Alerts');
  const windowList = document.createElement('ol');
  windowList.className = 'windows';
  windowList.setAttribute('aria-label', 'Recent windows');
  el.append(title, plotEl, alertList, windowList);
  document.getElementById('win-charts').append(el);
  const chart = { el, plotEl, alertList, windowList, series: s };
  chart.lines = () => thresholdsOf(chart.series).map((r) => r.value);
  const style = getComputedStyle(document.documentElement);
  const ink = style.getPropertyValue('--ink').trim() || '#222';
  const grid = style.getPropertyValue('--grid').trim() || '#ddd';
  const axis = { stroke: ink, grid: { stroke: grid }, ticks: { stroke: grid } };
  const hhmm = (u, splits) => splits.map((v) => new Date(v * 1000).toISOString().slice(11, 16));
  chart.plot = new uPlot({
    ...size(el),
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC'),
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(max, ...chart.lines()) * 1.1 || 1] } },
    series: [{ label: 'window end (UTC)' }, ...QUANTILES.map((q, i) => ({ label: q, stroke: COLORS[i], width: 2, points: { show: true } }))],
    axes: [{ ...axis, values: hhmm }, axis],
    hooks: { draw: [(u) => markers(u, chart)] },
  }, [[], ...QUANTILES.map(() => [])], plotEl);
  chart.plot.over.addEventListener('click', () => {
    const i = chart.plot.cursor.idx;
    if (i != null && chart.series.windows[i]) select(chart.series, chart.series.windows[i]);
  });
  charts.set(s.key, chart);
  return chart;
}

function update(chart, s) {
  chart.series = s;
  const w = s.windows;
  chart.plot.setData([w.map((x) => seconds(x.window_end)), ...QUANTILES.map((q) => w.map((x) => x[q] ?? null))]);
  const mine = alertsOf(s).sort((a, b) => seconds(a.startsAt) - seconds(b.startsAt));
  chart.alertList.replaceChildren(...mine.map((a) => {
    const li = document.createElement('li');
    const rule = ruleOf(a);
    const condition = rule ? `${rule.stat} ${rule.op} ${rule.value}` : 'threshold';
    li.className = 'alert';
    li.dataset.state = a.endsAt ? 'resolved' : 'firing';
    li.dataset.alertname = a.labels.alertname;
    li.textContent = a.endsAt
      ? `${a.labels.alertname} (${condition}): fired ${clock(a.startsAt)}, resolved ${clock(a.endsAt)}`
      : `${a.labels.alertname} (${condition}): firing since ${clock(a.startsAt)}`;
    if (a.annotations?.summary) li.title = a.annotations.summary;
    return li;
  }));
  chart.windowList.replaceChildren(...w.slice(-LISTED_WINDOWS).map((x) => {
    const li = document.createElement('li');
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'window';
    button.dataset.windowStart = x.window_start;
    button.textContent = `${clock(x.window_start)}–${clock(x.window_end)} · p95 ${x.p95 ?? '–'} · n=${x.count ?? '?'}`;
    button.addEventListener('click', () => select(s, x));
    li.append(button);
    return li;
  }));
}

/** Alert lines (fired red, resolved green) and rule thresholds (dashed). */
function markers(u, chart) {
  const { ctx } = u;
  const { left, top, width, height } = u.bbox;
  ctx.save();
  ctx.lineWidth = 2 * devicePixelRatio;
  for (const a of alertsOf(chart.series)) {
    for (const [time, color] of [[a.startsAt, FIRING], [a.endsAt, RESOLVED]]) {
      if (!time) continue;
      const x = u.valToPos(seconds(time), 'x', true);
      if (x < left || x > left + width) continue;
      ctx.strokeStyle = color;
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, top + height);
      ctx.stroke();
    }
  }
  ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
  ctx.strokeStyle = FIRING;
  for (const value of chart.lines()) {
    const y = u.valToPos(value, 'y', true);
    ctx.beginPath();
    ctx.moveTo(left, y);
    ctx.lineTo(left + width, y);
    ctx.stroke();
  }
  ctx.restore();
}

const glob = (pattern) => new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);

/** A URI search of the Elasticsearch output that stores `tag`, for one window. */
function elasticsearchLink(tag, s, win) {
  const output = description?.outputs.find((o) => o.elasticsearch && o.match.some((m) => glob(m).test(tag)));
  if (!output) return null;
  const samples = description.filters.find((f) => f.name === description.samples?.filter);
  const enrich = samples?.config?.enrich_field || 'extract';
  const index = output.elasticsearch.index.replace(/%[A-Za-z%]/g, '*').replace(/\{[^}]*\}/g, '*').replace(/\*+/g, '*');
  const terms = [`@timestamp:["${win.window_start}" TO "${win.window_end}"}`, `${enrich}.metric:"${s.metric}"`,
    ...Object.entries(s.labels).map(([k, v]) => `${enrich}.labels.${k}:"${v}"`)];
  const q = encodeURIComponent(terms.join(' AND '));
  return { output: output.name, url: `${output.elasticsearch.hosts[0]}/${index}/_search?q=${q}&size=50&sort=@timestamp` };
}

async function select(s, win) {
  const panel = $('win-samples');
  panel.hidden = false;
  const list = $('win-samples-list');
  const summary = $('win-samples-summary');
  list.replaceChildren();
  $('win-es').replaceChildren();
  const head = `${s.metric} {${labelText(s.labels)}}, ${clock(win.window_start)}–${clock(win.window_end)} UTC`;
  const spec = description?.samples;
  if (!spec) {
    summary.textContent = `${head}: window samples are off; set admin.samples in the config.`;
    panel.focus();
    return;
  }
  const key = Object.fromEntries(spec.key.map((k) => [k, win[k]]));
  const query = new URLSearchParams({ from: win.window_start, to: win.window_end, key: JSON.stringify(key), limit: '20' });
  try {
    const answer = await api(`/samples?${query}`);
    summary.textContent = `${head}: ${answer.samples.length} sample statements of ${answer.seen} seen by ${answer.filter}.`;
    list.replaceChildren(...answer.samples.map((sample) => {
      const li = document.createElement('li');
      li.className = 'sample';
      const text = typeof sample.body?.message === 'string' ? sample.body.message : JSON.stringify(sample.body);
      const code = document.createElement('code');
      code.textContent = text;
      const details = document.createElement('details');
      const more = document.createElement('summary');
      more.textContent = 'record';
      const pre = document.createElement('pre');
      pre.textContent = JSON.stringify(sample, null, 2);
      details.append(more, pre);
      li.append(code, details);
      return li;
    }));
    const link = answer.samples[0] && elasticsearchLink(answer.samples[0].tag, s, win);
    if (link) {
      const a = document.createElement('a');
      a.href = link.url;
      a.target = '_blank';
      a.rel = 'noopener';
      a.className = 'es-link';
      a.textContent = `These statements in Elasticsearch (output ${link.output})`;
      $('win-es').append(a);
    }
  } catch (error) {
    summary.textContent = `${head}: ${error.message}`;
  }
  panel.focus();
}
