import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

/** A URL Reelay refuses to fetch or call: bad scheme, or it leads to a non-public address. */
export class BlockedUrlError extends Error {
  override name = 'BlockedUrlError';
}

type Range = [ipaddr.IPv4 | ipaddr.IPv6, number];

const IPV4_COMPATIBLE = ipaddr.parse('::');

/**
 * Decides which addresses Reelay may connect to on a client's behalf (image URLs, callbacks).
 * Only public unicast addresses are allowed: loopback, private, link-local (cloud metadata at
 * 169.254.169.254), unique-local, CGNAT, multicast and reserved ranges are refused, unless the URL's
 * host is on the allow-list (`REELAY_URL_ALLOWLIST`: host names or literal IPs match the URL's host;
 * CIDRs match the resolved address).
 */
export class UrlGuard {
  private readonly hosts = new Set<string>();
  private readonly ranges: Range[] = [];

  constructor(allowlist: string[]) {
    for (const entry of allowlist) {
      if (entry.includes('/')) this.ranges.push(ipaddr.parseCIDR(entry));
      else this.hosts.add(normaliseHost(entry));
    }
  }

  /** True when the host itself is allow-listed: its addresses are not checked. */
  hostAllowed(host: string): boolean {
    return this.hosts.has(normaliseHost(host));
  }

  /** Throws BlockedUrlError when `ip` may not be connected to. */
  checkAddress(ip: string, host: string): void {
    let addr: ipaddr.IPv4 | ipaddr.IPv6 = ipaddr.parse(ip);
    if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) {
      addr = (addr as ipaddr.IPv6).toIPv4Address();
    }
    for (const [net, bits] of this.ranges) {
      if (net.kind() === addr.kind() && addr.match(net, bits)) return;
    }
    let range: string = addr.range();
    // ::/96 also holds the deprecated IPv4-compatible form (::127.0.0.1 is ::7f00:1), which
    // ipaddr.js calls unicast; no public host is reached that way.
    if (range === 'unicast' && addr.kind() === 'ipv6' && addr.match(IPV4_COMPATIBLE, 96)) range = 'IPv4-compatible';
    if (range !== 'unicast') {
      throw new BlockedUrlError(`refusing to connect to ${host} (${ip}): ${range} address`);
    }
  }

  /** Parses and checks a URL's scheme and, for a literal IP host, the address. */
  parse(raw: string): URL {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new BlockedUrlError(`not a valid URL: ${truncate(raw)}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new BlockedUrlError(`only http and https URLs are allowed: ${truncate(raw)}`);
    }
    if (url.username || url.password) throw new BlockedUrlError('URLs with credentials are not allowed');
    const host = normaliseHost(url.hostname);
    if (!this.hostAllowed(host) && isIP(host)) this.checkAddress(host, host);
    return url;
  }

  /** Resolves a URL's host and checks every address (the check a fetch repeats at connect time). */
  async check(raw: string): Promise<URL> {
    const url = this.parse(raw);
    const host = normaliseHost(url.hostname);
    if (this.hostAllowed(host) || isIP(host)) return url;
    const addresses = await new Promise<LookupAddress[]>((res, rej) =>
      dnsLookup(host, { all: true }, (err, addrs) => (err ? rej(err) : res(addrs))),
    ).catch((e: Error) => {
      throw new BlockedUrlError(`cannot resolve ${host}: ${e.message}`);
    });
    for (const a of addresses) this.checkAddress(a.address, host);
    return url;
  }

  /**
   * A `lookup` for `net.connect` that refuses blocked addresses, so the address actually connected
   * to is the one checked (no DNS-rebinding window).
   */
  readonly lookup = (
    hostname: string,
    options: { all?: boolean; family?: number } & Record<string, unknown>,
    callback: (err: Error | null, address: string | LookupAddress[], family?: number) => void,
  ): void => {
    dnsLookup(hostname, { ...options, all: true } as { all: true }, (err, addrs) => {
      if (err) return callback(err, '', 0);
      try {
        if (!this.hostAllowed(hostname)) for (const a of addrs) this.checkAddress(a.address, hostname);
      } catch (e) {
        return callback(e as Error, '', 0);
      }
      if (options.all) return callback(null, addrs);
      const first = addrs[0];
      if (!first) return callback(new Error(`no address for ${hostname}`), '', 0);
      callback(null, first.address, first.family);
    });
  };
}

function normaliseHost(h: string): string {
  return h.toLowerCase().replace(/^\[|\]$/g, '');
}

function truncate(s: string): string {
  return s.length > 120 ? `${s.slice(0, 120)}…` : s;
}
