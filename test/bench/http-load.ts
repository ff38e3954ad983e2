import autocannon from "autocannon";
import type { Sample, Side } from "./frame.ts";

/** HTTP load from autocannon in the bench process (keep-alive, one request in flight per connection). */

export interface HttpLoadOptions {
  url: string;
  connections: number;
  /** Every answer's body must equal this, or the measurement fails. */
  expectBody?: string;
  /** Another request than a bare GET: every request the same. */
  method?: "GET" | "POST" | "PUT";
  headers?: Record<string, string>;
  body?: Buffer | string;
}

export async function httpLoad(o: HttpLoadOptions, durationS: number): Promise<Sample> {
  const r = await autocannon({
    url: o.url,
    connections: o.connections,
    pipelining: 1,
    duration: durationS,
    ...(o.expectBody !== undefined ? { expectBody: o.expectBody } : {}),
    ...(o.method !== undefined ? { method: o.method } : {}),
    ...(o.headers !== undefined ? { headers: o.headers } : {}),
    ...(o.body !== undefined ? { body: o.body } : {}),
  });
  const failed = { errors: r.errors, timeouts: r.timeouts, non2xx: r.non2xx, mismatches: r.mismatches };
  if (Object.values(failed).some((n) => n > 0) || r.requests.total === 0) {
    throw new Error(
      `${o.url}: failed requests ${JSON.stringify(failed)} of ${r.requests.total} answered; ` +
        `status codes ${JSON.stringify(r.statusCodeStats ?? {})}`,
    );
  }
  return { value: r.requests.total / r.duration, p50Ms: r.latency.p50, p99Ms: r.latency.p99 };
}

export function httpSide(label: string, o: HttpLoadOptions): Side {
  return { label, measure: (durationS) => httpLoad(o, durationS) };
}

/** One request before the load, so both sides are known to give the same answer. */
export async function expectAnswer(url: string, want: { contentType: RegExp; body: string }): Promise<void> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  const body = await res.text();
  const contentType = res.headers.get("content-type") ?? "";
  if (res.status !== 200 || !want.contentType.test(contentType) || body !== want.body) {
    throw new Error(`${url}: answered ${res.status} ${contentType} ${JSON.stringify(body)}`);
  }
}
