// The console's client of /api/v1: JSON calls and the event stream, with
// the admin token (if any) sent as a bearer token. The stream is read with
// fetch rather than EventSource, which cannot send a header.

const TOKEN_KEY = 'weir.admin.token';

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

function headers(json) {
  const h = { Accept: 'application/json' };
  if (json) h['Content-Type'] = 'application/json';
  if (token()) h.Authorization = `Bearer ${token()}`;
  return h;
}

/** An answer other than 2xx: `status`, and `body` (the JSON error). */
export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message || body?.error || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

/** Call `/api/v1${path}`; resolves to the JSON answer, rejects with ApiError. */
export async function api(path, { method = 'GET', body } = {}) {
  const response = await fetch(`/api/v1${path}`, {
    method,
    headers: headers(body !== undefined),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = { error: { message: text } };
  }
  if (!response.ok) throw new ApiError(response.status, json);
  return json;
}

/**
 * Read `/api/v1/stream?tags=...` for good: each event calls `on(name, data)`;
 * `status(text)` hears "live", "reconnecting" or "unauthorized".
 */
export function stream(tags, on, status) {
  let retry = 1000;
  const connect = async () => {
    try {
      const query = new URLSearchParams({ tags: tags.join(',') || '-' });
      const response = await fetch(`/api/v1/stream?${query}`, { headers: headers(false) });
      if (response.status === 401) {
        status('unauthorized');
        setTimeout(connect, 3000);
        return;
      }
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      status('live');
      retry = 1000;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          dispatch(buffer.slice(0, end), on);
          buffer = buffer.slice(end + 2);
        }
      }
    } catch {
      // Network errors fall through to a retry.
    }
    status('reconnecting');
    setTimeout(connect, retry);
    retry = Math.min(retry * 2, 10000);
  };
  connect();
}

function dispatch(block, on) {
  let name = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (line.startsWith('event:')) name = line.slice(6).trim();
    else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
  }
  if (data.length === 0) return;
  try {
    on(name, JSON.parse(data.join('\n')));
  } catch (error) {
    console.error('bad stream event', name, error);
  }
}
