// ZAPI v3.1 client. The key lives only in this tab's sessionStorage and in the ZAPI_KEY
// header: never in a URL, a cookie, or a log line.
export const BASE = '/zapi/v3.1/zapi.cgi';
const KEY_SLOT = 'kernlb.zapiKey';

export class ApiError extends Error {
  constructor(status, body) {
    const message = body && typeof body.message === 'string' && body.message
      ? body.message
      : `The server answered HTTP ${status}.`;
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
  }
}

let onUnauthorized = () => {};

export function setUnauthorizedHandler(handler) { onUnauthorized = handler; }
export function getKey() { return sessionStorage.getItem(KEY_SLOT); }
export function setKey(key) { sessionStorage.setItem(KEY_SLOT, key); }
export function clearKey() { sessionStorage.removeItem(KEY_SLOT); }

export async function request(method, path, body, { key = getKey(), quiet401 = false } = {}) {
  const headers = { ZAPI_KEY: key || '' };
  const init = { method, headers, cache: 'no-store', credentials: 'omit', redirect: 'error' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(BASE + path, init);
  } catch (err) {
    throw new ApiError(0, { message: 'kernlb cannot be reached: ' + err.message });
  }
  let data = null;
  try { data = await response.json(); } catch { data = null; }
  if (!response.ok) {
    if (response.status === 401 && !quiet401) onUnauthorized();
    throw new ApiError(response.status, data);
  }
  return data;
}

export const get = (path, opts) => request('GET', path, undefined, opts);
export const put = (path, body) => request('PUT', path, body);
export const post = (path, body) => request('POST', path, body);
export const del = (path) => request('DELETE', path);

export const farmPath = (name) => '/farms/' + encodeURIComponent(name);
