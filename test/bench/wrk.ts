import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Sample, Side } from "./frame.ts";
import { runMeasured } from "./process-cpu.ts";

/**
 * HTTP load from wrk (Debian's `wrk`, written in C): on 2 cores a Node.js client saturates before nginx or a
 * lean Node server does, so every HTTP benchmark drives its load with wrk, and reports wrk's own CPU
 * (`generatorCpuS`) beside the server's (frame.ts flags a round where wrk used half a core more than the
 * server). Keep-alive, one request in flight per connection, as autocannon did.
 */

export const WRK = "/usr/bin/wrk";

export interface WrkLoad {
  /** `http://host:port`: the requests' paths come from `paths`. */
  base: string;
  /** The request paths (with their queries), cycled through in order: one path is a fixed request. */
  paths: readonly string[];
  connections: number;
  /** wrk threads; 1 unless the server outruns one wrk thread. */
  threads?: number;
  method?: "GET" | "HEAD" | "POST" | "PUT";
  headers?: Record<string, string>;
  body?: Buffer | string;
  /**
   * Every answer's status must be this one (default: any 2xx or 3xx, as wrk counts) and, with `expectBody`,
   * its body exactly that: checked in wrk's response hook, which costs wrk some CPU (reported as the rest).
   */
  expectStatus?: number;
  expectBody?: string;
}

export interface WrkSample extends Sample {
  /** Requests answered within the window. */
  total: number;
}

const lua = (s: string) => JSON.stringify(s); // a JSON string of ASCII text is a valid Lua string literal

/** The wrk script of a load: requests built once per path, checks only when asked, counts read by `done`. */
function script(o: WrkLoad, bodyFile: string | undefined): string {
  const headers = Object.entries(o.headers ?? {})
    .map(([k, v]) => `[${lua(k)}] = ${lua(v)}`)
    .join(", ");
  const check = o.expectStatus !== undefined || o.expectBody !== undefined;
  return `local paths = { ${o.paths.map(lua).join(", ")} }
local headers = { ${headers} }
local body = nil
${bodyFile ? `do local f = assert(io.open(${lua(bodyFile)}, "rb")); body = f:read("*a"); f:close() end` : ""}
local requests = {}
-- built in init, once wrk has set wrk.host (the Host header wrk.format adds)
init = function()
  for i, p in ipairs(paths) do requests[i] = wrk.format(${lua(o.method ?? "GET")}, p, headers, body) end
end
local i = 0
request = function()
  i = i % #requests + 1
  return requests[i]
end
${
  check
    ? `wrong = 0
response = function(status, _, got)
  if ${o.expectStatus !== undefined ? `status ~= ${o.expectStatus}` : "false"}${
    o.expectBody !== undefined ? ` or got ~= ${lua(o.expectBody)}` : ""
  } then wrong = wrong + 1 end
end
local threads = {}
setup = function(thread) table.insert(threads, thread) end
done = function()
  local n = 0
  for _, t in ipairs(threads) do n = n + t:get("wrong") end
  io.write("wrong answers: " .. n .. "\\n")
end`
    : ""
}
`;
}

/** wrk's latency line (`50%    1.23ms`) in milliseconds. */
function latencyMs(out: string, q: string): number | undefined {
  const m = new RegExp(`^\\s+${q}%\\s+([\\d.]+)(us|ms|s)$`, "m").exec(out);
  if (!m) return undefined;
  const v = Number(m[1]);
  return m[2] === "us" ? v / 1000 : m[2] === "s" ? v * 1000 : v;
}

/** One run of wrk for `durationS`; throws on any socket error, non-2xx/3xx or unexpected answer. */
export async function wrkLoad(label: string, o: WrkLoad, durationS: number): Promise<WrkSample> {
  if (!existsSync(WRK)) throw new Error(`${WRK} is missing: apt-get install wrk (Debian)`);
  if (o.paths.length === 0) throw new Error(`${label}: no request path`);
  const dir = await mkdtemp(path.join(os.tmpdir(), "sidecars-wrk-"));
  try {
    const bodyFile = o.body !== undefined ? path.join(dir, "body") : undefined;
    if (bodyFile) await writeFile(bodyFile, o.body as Buffer | string);
    const scriptFile = path.join(dir, "load.lua");
    await writeFile(scriptFile, script(o, bodyFile));
    const { code, out, cpuS } = await runMeasured(WRK, [
      `-t${o.threads ?? 1}`,
      `-c${o.connections}`,
      `-d${Math.max(1, Math.round(durationS))}s`,
      "--timeout",
      "10s",
      "--latency",
      "-s",
      scriptFile,
      o.base,
    ]);
    if (code !== 0) throw new Error(`${label}: wrk exited ${code}: ${out}`);
    if (/Non-2xx or 3xx responses|Socket errors/.test(out)) {
      throw new Error(`${label}: wrk saw failures:\n${out}`);
    }
    const wrong = /wrong answers: (\d+)/.exec(out)?.[1];
    if (wrong !== undefined && Number(wrong) > 0) {
      throw new Error(`${label}: ${wrong} answers were not the expected ones:\n${out}`);
    }
    const total = /(\d+) requests in ([\d.]+)(ms|s|m)/.exec(out);
    const rps = /Requests\/sec:\s+([\d.]+)/.exec(out)?.[1];
    if (!rps || !total) throw new Error(`${label}: no figures in wrk's output:\n${out}`);
    if (Number(total[1]) === 0) throw new Error(`${label}: no request answered:\n${out}`);
    return {
      value: Number(rps),
      p50Ms: latencyMs(out, "50"),
      p99Ms: latencyMs(out, "99"),
      total: Number(total[1]),
      generatorCpuS: cpuS,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A side whose load is wrk's; `pids` names the server's processes, whose CPU the frame reports beside wrk's. */
export function wrkSide(label: string, o: WrkLoad, pids?: () => readonly number[]): Side {
  return {
    label,
    measure: (durationS) => wrkLoad(label, o, durationS),
    ...(pids ? { pids } : {}),
  };
}

/** One request before the load, so a side is known to give the answer the load will expect of it. */
export async function expectAnswer(
  url: string,
  want: { status?: number; contentType: RegExp; body: string | Buffer },
  headers: Record<string, string> = {},
): Promise<void> {
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(10_000) });
  const body = Buffer.from(await res.arrayBuffer());
  const contentType = res.headers.get("content-type") ?? "";
  const wanted = typeof want.body === "string" ? Buffer.from(want.body) : want.body;
  if (res.status !== (want.status ?? 200) || !want.contentType.test(contentType) || !body.equals(wanted)) {
    throw new Error(
      `${url}: answered ${res.status} ${contentType}, ${body.length} bytes ` +
        `(${JSON.stringify(body.subarray(0, 80).toString())})`,
    );
  }
}
