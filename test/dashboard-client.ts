import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';

/** The id `REELAY_API_KEYS` gives a key (`auth/keys.ts`): what `REELAY_OPERATOR_KEYS` names. */
export const envKeyId = (key: string) => `key_${createHash('sha256').update(key).digest('hex').slice(0, 12)}`;

/** A browser's side of the dashboard over plain HTTP: its cookies, and the session's CSRF token. */
/** A call of the native API (`/reelay/v1`) that must succeed: its JSON answer. */
export async function callApi(base: string, key: string, method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(`${base}/reelay/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const json = (await res.json()) as any;
  assert.ok(res.ok, JSON.stringify(json));
  return json;
}

export interface DashClient {
  cookie: string;
  csrf: string;
  get(path: string, headers?: Record<string, string>): Promise<Response>;
  post(path: string, fields: Record<string, string>, headers?: Record<string, string>): Promise<Response>;
}

/** The value of a hidden field of a page. */
export function hidden(page: string, name: string): string | undefined {
  return new RegExp(`name="${name}" value="([^"]*)"`).exec(page)?.[1];
}

/** The `name=value` pairs of a response's `Set-Cookie` headers. */
export function setCookies(res: Response): Map<string, string> {
  const out = new Map<string, string>();
  for (const c of res.headers.getSetCookie()) {
    const [pair] = c.split(';');
    const i = pair!.indexOf('=');
    out.set(pair!.slice(0, i), pair!.slice(i + 1));
  }
  return out;
}

/** Opens the sign-in page and sends the key; gives the raw answer and the sign-in cookie it used. */
export async function trySignIn(base: string, key: string): Promise<Response> {
  const page = await fetch(`${base}/dashboard/signin`);
  const token = setCookies(page).get('reelay_signin')!;
  const html = await page.text();
  return fetch(`${base}/dashboard/signin`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `reelay_signin=${token}`, origin: base },
    body: new URLSearchParams({ _csrf: hidden(html, '_csrf')!, key, next: '/dashboard/tasks' }).toString(),
  });
}

export async function signIn(base: string, key: string): Promise<DashClient> {
  const res = await trySignIn(base, key);
  assert.equal(res.status, 303, await res.text());
  const session = setCookies(res).get('reelay_session');
  assert.ok(session, 'a session cookie');
  const cookie = `reelay_session=${session}`;
  const get = (path: string, headers: Record<string, string> = {}) => fetch(`${base}${path}`, { redirect: 'manual', headers: { cookie, ...headers } });
  const csrf = hidden(await (await get('/dashboard/tasks')).text(), '_csrf');
  assert.ok(csrf, 'the page carries the CSRF token');
  return {
    cookie,
    csrf,
    get,
    post: (path, fields, headers = {}) =>
      fetch(`${base}${path}`, {
        method: 'POST',
        redirect: 'manual',
        headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', origin: base, ...headers },
        body: new URLSearchParams(fields).toString(),
      }),
  };
}
