import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Store } from '../store/port.js';

/** The session cookie's name. */
export const SESSION_COOKIE = 'reelay_session';
/** The sign-in form's own cookie (a token its form carries back: sign-in CSRF). */
export const SIGNIN_COOKIE = 'reelay_signin';
/** A session ends after this long unused (12 h)… */
export const IDLE_MS = 12 * 3_600_000;
/** …and this long after sign-in in any case (7 days). */
export const MAX_MS = 7 * 86_400_000;
/** A session's idle end is moved on at most this often (one write per 5 minutes of use). */
const TOUCH_EVERY_MS = 5 * 60_000;

/** Who is looking: the key a session was opened with. */
export interface Viewer {
  keyId: string;
  keyName: string;
  tenantId: string;
  /** An operator key (`REELAY_OPERATOR_KEYS`): sees every tenant's tasks. */
  operator: boolean;
  /** What every state-changing request of this session carries (a form field or a header). */
  csrf: string;
  tokenHash: string;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** The CSRF token of a session: derived from its cookie's token, which only its browser holds. */
export function csrfOf(token: string): string {
  return createHash('sha256').update(`csrf\0${token}`).digest('base64url');
}

/** Equal strings, in time that does not tell how much of them matched. */
export function same(a: string | undefined, b: string): boolean {
  if (a === undefined) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** A request's cookies (RFC 6265 pairs; a value that cannot be decoded is kept as sent). */
export function cookies(req: FastifyRequest): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    const name = part.slice(0, i).trim();
    const value = part.slice(i + 1).trim();
    if (!(name in out)) {
      try {
        out[name] = decodeURIComponent(value);
      } catch {
        out[name] = value;
      }
    }
  }
  return out;
}

/** A `Set-Cookie` value for the dashboard: HttpOnly, SameSite=Strict, Path=/dashboard, Secure on https. */
export function cookie(name: string, value: string, o: { secure: boolean; maxAgeS?: number }): string {
  return [`${name}=${value}`, 'Path=/dashboard', 'HttpOnly', 'SameSite=Strict', ...(o.secure ? ['Secure'] : []), ...(o.maxAgeS !== undefined ? [`Max-Age=${o.maxAgeS}`] : [])].join('; ');
}

/** A new random token (256 bits). */
export const newToken = () => randomBytes(32).toString('base64url');

export class Sessions {
  constructor(
    private readonly store: Store,
    private readonly operators: ReadonlySet<string>,
    private readonly secure: boolean,
  ) {}

  /** Opens a session for a key's id and tenant; gives its `Set-Cookie`. */
  async open(keyId: string, tenantId: string, now = Date.now()): Promise<string> {
    const token = newToken();
    await this.store.createSession({ tokenHash: sha256(token), keyId, tenantId, createdAt: now, idleUntil: now + IDLE_MS, expiresAt: now + MAX_MS });
    // Sessions that ended are cleared now and then, by the sign-ins that make new ones.
    void this.store.purgeSessions(now).catch(() => {});
    return cookie(SESSION_COOKIE, token, { secure: this.secure, maxAgeS: MAX_MS / 1000 });
  }

  /** The viewer of a request's session, when it has one that lasts and whose key is live. */
  async viewer(req: FastifyRequest, now = Date.now(), touch = true): Promise<Viewer | undefined> {
    const token = cookies(req)[SESSION_COOKIE];
    if (!token) return undefined;
    const tokenHash = sha256(token);
    const found = await this.store.findSession(tokenHash, now);
    if (!found) return undefined;
    if (touch && found.session.idleUntil - now < IDLE_MS - TOUCH_EVERY_MS) await this.store.touchSession(tokenHash, now + IDLE_MS);
    return {
      keyId: found.key.id,
      // A key from REELAY_API_KEYS has no name of its own: its first characters say which it is.
      keyName: found.key.source === 'env' || !found.key.name ? `${found.key.prefix}…` : found.key.name,
      tenantId: found.key.tenantId,
      operator: this.operators.has(found.key.id),
      csrf: csrfOf(token),
      tokenHash,
    };
  }

  /** Ends the session; gives the `Set-Cookie` that clears the cookie. */
  async close(viewer: Viewer): Promise<string> {
    await this.store.deleteSession(viewer.tokenHash);
    return this.cleared(SESSION_COOKIE);
  }

  cleared(name: string): string {
    return cookie(name, '', { secure: this.secure, maxAgeS: 0 });
  }

  signinCookie(token: string): string {
    return cookie(SIGNIN_COOKIE, token, { secure: this.secure, maxAgeS: 3600 });
  }
}

/**
 * Whether a POST came from a page of this site: `Sec-Fetch-Site` (when the browser sends it) is
 * `same-origin`, and `Origin` (when sent) is this server's own.
 */
export function sameSite(req: FastifyRequest, publicUrl: string): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin') return false;
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  const own = new Set([new URL(publicUrl).origin]);
  const host = req.headers.host;
  if (host) {
    own.add(`http://${host}`);
    own.add(`https://${host}`);
  }
  return own.has(origin);
}

/** Sends the browser to `to`: a 303 for a page, `HX-Redirect` for an htmx request. */
export function redirect(req: FastifyRequest, reply: FastifyReply, to: string): FastifyReply {
  if (req.headers['hx-request'] === 'true') return reply.header('hx-redirect', to).status(204).send();
  return reply.redirect(to, 303);
}
