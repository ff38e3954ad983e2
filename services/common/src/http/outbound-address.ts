import dns from "node:dns";
import http from "node:http";
import https from "node:https";
import { BlockList, isIP, type LookupFunction } from "node:net";

/**
 * Where the services may send requests that a user or a plugin's options name (a notification's callbackUrl,
 * the `http` authenticator, the HTTP SMS gateway): public addresses only, unless the operator lists the target.
 * The address is checked where the connection is made (the `lookup` of net.connect), after DNS, so a name that
 * resolves to 127.0.0.1 or 169.254.169.254, or that changes its answer between a check and the connection
 * (DNS rebinding), is refused too. The special-use ranges are IANA's registries
 * (https://www.iana.org/assignments/iana-ipv4-special-registry, …/iana-ipv6-special-registry) and RFC 6890.
 */

const V4: readonly [string, number, string][] = [
  ["0.0.0.0", 8, "an unspecified address ('this network')"],
  ["10.0.0.0", 8, "a private address (RFC 1918)"],
  ["100.64.0.0", 10, "a shared address (carrier-grade NAT, RFC 6598)"],
  ["127.0.0.0", 8, "a loopback address"],
  ["169.254.0.0", 16, "a link-local address (where cloud metadata services answer)"],
  ["172.16.0.0", 12, "a private address (RFC 1918)"],
  ["192.0.0.0", 24, "an IETF protocol assignment"],
  ["192.0.2.0", 24, "a documentation address"],
  ["192.88.99.0", 24, "a 6to4 relay anycast address"],
  ["192.168.0.0", 16, "a private address (RFC 1918)"],
  ["198.18.0.0", 15, "a benchmarking address"],
  ["198.51.100.0", 24, "a documentation address"],
  ["203.0.113.0", 24, "a documentation address"],
  ["224.0.0.0", 4, "a multicast address"],
  ["240.0.0.0", 4, "a reserved (or broadcast) address"],
];
const V6: readonly [string, number, string][] = [
  ["::", 128, "an unspecified address"],
  ["::1", 128, "a loopback address"],
  ["64:ff9b:1::", 48, "a local-use NAT64 address"],
  ["100::", 64, "a discard-only address"],
  ["2001::", 23, "an IETF protocol assignment (Teredo among them)"],
  ["2001:db8::", 32, "a documentation address"],
  ["fc00::", 7, "a unique local address (private, fc00::/7)"],
  ["fe80::", 10, "a link-local address"],
  ["fec0::", 10, "a site-local address (deprecated)"],
  ["ff00::", 8, "a multicast address"],
];

const RANGES = [
  ...V4.map(([net, bits, what]) => ({ list: subnet(net, bits, "ipv4"), what })),
  ...V6.map(([net, bits, what]) => ({ list: subnet(net, bits, "ipv6"), what })),
];

function subnet(net: string, bits: number, type: "ipv4" | "ipv6"): BlockList {
  const list = new BlockList();
  list.addSubnet(net, bits, type);
  return list;
}

/** An IPv6 address as its eight 16-bit groups (an embedded dotted quad included); undefined if not one. */
function groups(address: string): number[] | undefined {
  if (isIP(address) !== 6) return undefined;
  let text = address.replace(/%.*$/, "");
  const quad = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (quad) {
    const [a, b, c, d] = quad.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, quad.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = "", tail] = text.split("::");
  const part = (s: string | undefined) => (s ? s.split(":").map((g) => Number.parseInt(g, 16)) : []);
  const h = part(head);
  const t = part(tail);
  return tail === undefined ? h : [...h, ...new Array(8 - h.length - t.length).fill(0), ...t];
}

const quadOf = (hi: number, lo: number) => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;

/**
 * The IPv4 address an IPv6 one carries and is routed to: IPv4-mapped (::ffff:a.b.c.d, how a dual-stack socket
 * shows IPv4), NAT64 (64:ff9b::/96) and 6to4 (2002::/16). A check of the IPv6 ranges alone would pass them.
 */
function embeddedV4(address: string): string | undefined {
  const g = groups(address);
  if (g?.length !== 8) return undefined;
  const [g0, g1, g2, g3, g4, g5, g6, g7] = g as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0xffff) return quadOf(g6, g7);
  if (g0 === 0x64 && g1 === 0xff9b && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0) return quadOf(g6, g7);
  if (g0 === 0x2002) return quadOf(g1, g2);
  return undefined;
}

/** What kind of special-use address this is ("a loopback address"…), or undefined for a public one. */
export function specialUse(address: string): string | undefined {
  const v4 = isIP(address) === 4 ? address : embeddedV4(address);
  if (v4 !== undefined) return RANGES.find((r) => r.list.check(v4, "ipv4"))?.what;
  if (isIP(address) !== 6) return "not an IP address";
  return RANGES.find((r) => r.list.check(address.replace(/%.*$/, ""), "ipv6"))?.what;
}

/** A target refused by the policy: the message names the address, why, and the config key that would allow it. */
export class OutboundRefused extends Error {
  override name = "OutboundRefused";
  readonly code = "outbound_refused";
}

export interface OutboundPolicy {
  /** Throws OutboundRefused when the URL's host is a special-use address literal (names are checked at connect). */
  checkUrl(url: string | URL): void;
  /** net.connect's `lookup`: resolves as dns.lookup does and fails with OutboundRefused on a special-use answer. */
  lookup: LookupFunction;
  /**
   * Keep-alive agents of this policy's own: a pooled connection is reused by host and port only, so one
   * opened under a policy that lists a target must never serve a request under one that does not.
   */
  agents: { http: http.Agent; https: https.Agent };
}

/**
 * @param allow hosts (exact names, any address they resolve to) and IP addresses or CIDR blocks the operator
 *   lets through although they are special-use (a gateway on the private network, a test server on loopback)
 * @param allowKey the config key of `allow`, named in the refusal so that the log says how to allow a target
 */
export function createOutboundPolicy(allow: readonly string[], allowKey: string): OutboundPolicy {
  const hosts = new Set<string>();
  const blocks = new BlockList();
  for (const entry of allow) {
    const [addr = "", bits] = entry.split("/");
    const family = isIP(addr);
    if (family === 0) {
      if (bits !== undefined) throw new Error(`${allowKey}: "${entry}" is not a CIDR block`);
      hosts.add(entry.toLowerCase().replace(/\.$/, ""));
    } else if (bits === undefined) blocks.addAddress(addr, family === 6 ? "ipv6" : "ipv4");
    else blocks.addSubnet(addr, Number(bits), family === 6 ? "ipv6" : "ipv4");
  }
  const listed = (address: string) => {
    const v4 = isIP(address) === 4 ? address : embeddedV4(address);
    return v4 !== undefined ? blocks.check(v4, "ipv4") : blocks.check(address, "ipv6");
  };
  const refusal = (host: string, address: string): OutboundRefused | undefined => {
    if (listed(address)) return undefined;
    const what = specialUse(address);
    if (what === undefined) return undefined;
    const shown = host === address ? address : `${host} (${address})`;
    return new OutboundRefused(
      `${shown} is ${what}: requests go to public addresses only; if this target is yours, list it in ${allowKey}`,
    );
  };
  const hostAllowed = (host: string) => hosts.has(host.toLowerCase().replace(/\.$/, ""));

  type Callback = (err: Error | null, address?: string | dns.LookupAddress[], family?: number) => void;
  const lookup = ((hostname: string, options: dns.LookupOptions, callback: Callback) => {
    dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err);
      if (!hostAllowed(hostname)) {
        for (const a of addresses) {
          const refused = refusal(hostname, a.address);
          if (refused) return callback(refused);
        }
      }
      if (options.all) return callback(null, addresses);
      const [first] = addresses;
      return first
        ? callback(null, first.address, first.family)
        : callback(new Error(`${hostname}: no address`));
    });
  }) as unknown as LookupFunction;

  return {
    agents: {
      http: new http.Agent({ keepAlive: true, timeout: 5000, lookup }),
      https: new https.Agent({ keepAlive: true, timeout: 5000, lookup }),
    },
    checkUrl(url) {
      const host = (typeof url === "string" ? new URL(url) : url).hostname.replace(/^\[|\]$/g, "");
      if (isIP(host) === 0 || hostAllowed(host)) return;
      const refused = refusal(host, host);
      if (refused) throw refused;
    },
    lookup,
  };
}

export interface OutboundRequest {
  method: string;
  headers: Record<string, string>;
  body?: string | Buffer | undefined;
  timeoutMs: number;
  policy: OutboundPolicy;
  /** Answers longer than this are cut off with an error (a target may not fill our memory). */
  maxAnswerBytes?: number;
  tls?: { ca?: Buffer | undefined; rejectUnauthorized?: boolean };
}

/** Why an outbound request got no answer. */
export class OutboundError extends Error {
  override name = "OutboundError";
  readonly reason: "refused" | "timeout" | "unreachable" | "too_large";
  constructor(message: string, reason: OutboundError["reason"]) {
    super(message);
    this.reason = reason;
  }
}

/**
 * One request through the policy, redirects not followed (a redirect is an answer like any other: a target may
 * not send us on to an address the policy refuses). node:http rather than fetch: fetch's connection cannot be
 * given a `lookup` without a dependency on undici itself.
 */
export function outboundRequest(url: string, o: OutboundRequest): Promise<{ status: number; body: string }> {
  const target = new URL(url);
  try {
    o.policy.checkUrl(target);
  } catch (err) {
    return Promise.reject(new OutboundError((err as Error).message, "refused"));
  }
  const tls = target.protocol === "https:";
  const lib = tls ? https : http;
  const payload = o.body === undefined ? undefined : Buffer.from(o.body);
  const limit = o.maxAnswerBytes ?? 1024 * 1024;
  return new Promise((resolve, reject) => {
    const req = lib.request(
      target,
      {
        method: o.method,
        headers: { ...o.headers, ...(payload ? { "content-length": payload.length } : {}) },
        lookup: o.policy.lookup,
        agent: tls ? o.policy.agents.https : o.policy.agents.http,
        timeout: o.timeoutMs,
        ...(tls && o.tls ? { ca: o.tls.ca, rejectUnauthorized: o.tls.rejectUnauthorized ?? true } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          size += c.length;
          if (size > limit) req.destroy(new OutboundError(`answer over ${limit} bytes`, "too_large"));
          else chunks.push(c);
        });
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }),
        );
        res.on("error", (err) => req.destroy(err));
      },
    );
    // the whole exchange is bounded, not only the idle time between packets
    const timer = setTimeout(
      () => req.destroy(new OutboundError(`no answer within ${o.timeoutMs} ms`, "timeout")),
      o.timeoutMs,
    );
    req.on("close", () => clearTimeout(timer));
    req.on("timeout", () => req.destroy(new OutboundError(`no answer within ${o.timeoutMs} ms`, "timeout")));
    req.on("error", (err) => {
      if (err instanceof OutboundError) reject(err);
      else if (err instanceof OutboundRefused) reject(new OutboundError(err.message, "refused"));
      else {
        const code = (err as NodeJS.ErrnoException).code;
        reject(new OutboundError(code ? `${code} (${err.message})` : err.message, "unreachable"));
      }
    });
    req.end(payload);
  });
}
