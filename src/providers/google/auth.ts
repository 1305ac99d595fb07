import { createSign } from 'node:crypto';
import { request } from 'undici';
import { TransientError } from '../port.js';

/** The fields of a Google service-account key file that the token exchange needs. */
export interface ServiceAccountKey {
  client_email: string;
  private_key: string;
  token_uri?: string;
}

export function parseServiceAccount(text: string, where: string): ServiceAccountKey {
  let key: Partial<ServiceAccountKey>;
  try {
    key = JSON.parse(text) as Partial<ServiceAccountKey>;
  } catch {
    throw new Error(`${where}: the service-account key is not JSON`);
  }
  if (typeof key.client_email !== 'string' || typeof key.private_key !== 'string') {
    throw new Error(`${where}: the service-account key needs client_email and private_key`);
  }
  return key as ServiceAccountKey;
}

/**
 * OAuth access tokens for a service account: a JWT signed with the account's RS256 key is
 * exchanged at `token_uri` (the jwt-bearer grant); the token is reused until a minute before it
 * expires, and one exchange serves all the requests waiting for it.
 */
export class ServiceAccountTokens {
  private token?: { value: string; until: number };
  private pending?: Promise<string>;

  constructor(
    private readonly key: ServiceAccountKey,
    private readonly label: string,
    private readonly timeoutMs: number,
    private readonly scope = 'https://www.googleapis.com/auth/cloud-platform',
  ) {}

  async header(): Promise<Record<string, string>> {
    return { authorization: `Bearer ${await this.get()}` };
  }

  private async get(): Promise<string> {
    if (this.token && this.token.until > Date.now()) return this.token.value;
    this.pending ??= this.exchange().finally(() => (this.pending = undefined));
    return this.pending;
  }

  private async exchange(): Promise<string> {
    const tokenUri = this.key.token_uri ?? 'https://oauth2.googleapis.com/token';
    const now = Math.floor(Date.now() / 1000);
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const unsigned = `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64({ iss: this.key.client_email, scope: this.scope, aud: tokenUri, iat: now, exp: now + 3600 })}`;
    const signature = createSign('RSA-SHA256').update(unsigned).sign(this.key.private_key, 'base64url');
    const body = new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: `${unsigned}.${signature}` }).toString();
    let res;
    try {
      res = await request(tokenUri, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (e) {
      throw new TransientError(`${this.label}: the token exchange failed: ${(e as Error).message}`);
    }
    const answer = (await res.body.json().catch(() => ({}))) as { access_token?: string; expires_in?: number; error?: string; error_description?: string };
    if (res.statusCode !== 200 || typeof answer.access_token !== 'string') {
      throw new TransientError(`${this.label}: the token exchange answered ${res.statusCode}: ${answer.error ?? ''} ${answer.error_description ?? ''}`.trim());
    }
    this.token = { value: answer.access_token, until: Date.now() + Math.max(0, (answer.expires_in ?? 3600) - 60) * 1000 };
    return answer.access_token;
  }
}
