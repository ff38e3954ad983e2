import http from "node:http";
import net from "node:net";
import type { Logger } from "pino";
import { type LogLine, recordingLogger } from "./recording-logger.ts";

/**
 * The pieces of test/security/fuzz.test.ts that are not about what it generates: one request description
 * sent either through node:http on a keep-alive agent (most requests) or, when node:http would refuse to
 * send it (a control byte in the path or a header, a method that is not a token), byte for byte over a
 * socket of its own; and a pino destination that keeps the lines at level error and above.
 */

export interface FuzzRequest {
  method: string;
  /** path and query exactly as they go on the request line */
  path: string;
  headers: [string, string][];
  body?: Buffer | undefined;
}

export interface FuzzAnswer {
  status: number;
  /** lower-cased names */
  headers: Record<string, string>;
  body: Buffer;
  /** sent over a raw socket (node:http would not send it) */
  raw: boolean;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// node:http refuses a path holding a byte outside 0x21-0xff (lib/_http_client.js INVALID_PATH_REGEX)
const SENDABLE_PATH = /^[\u0021-\u00ff]*$/;

function sendable(r: FuzzRequest): boolean {
  if (!TOKEN.test(r.method) || !SENDABLE_PATH.test(r.path)) return false;
  try {
    for (const [name, value] of r.headers) {
      http.validateHeaderName(name);
      http.validateHeaderValue(name, value);
    }
  } catch {
    return false;
  }
  return true;
}

export interface FuzzClient {
  send(r: FuzzRequest): Promise<FuzzAnswer>;
  close(): void;
}

/** A client of one server on 127.0.0.1; an answer that takes longer than `timeoutMs` rejects. */
export function fuzzClient(port: number, timeoutMs: number, maxSockets = 8): FuzzClient {
  const agent = new http.Agent({ keepAlive: true, maxSockets });
  return {
    send: (r) => (sendable(r) ? viaHttp(agent, port, r, timeoutMs) : viaSocket(port, r, timeoutMs)),
    close: () => agent.destroy(),
  };
}

function viaHttp(agent: http.Agent, port: number, r: FuzzRequest, timeoutMs: number): Promise<FuzzAnswer> {
  return new Promise((resolve, reject) => {
    const headers: [string, string][] = [...r.headers];
    if (r.body && !headers.some(([n]) => n.toLowerCase() === "content-length")) {
      headers.push(["content-length", String(r.body.length)]);
    }
    // an object, repeated names as arrays: node 24 sends a flat [name, value, …] array without a Host header
    const byName: Record<string, string | string[]> = {};
    for (const [name, value] of headers) {
      const had = byName[name];
      byName[name] = had === undefined ? value : [...(Array.isArray(had) ? had : [had]), value];
    }
    const req = http.request(
      { host: "127.0.0.1", port, method: r.method, path: r.path, agent, headers: byName },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const h: Record<string, string> = {};
          for (const [k, v] of Object.entries(res.headers))
            h[k] = Array.isArray(v) ? v.join(", ") : (v ?? "");
          resolve({ status: res.statusCode ?? 0, headers: h, body: Buffer.concat(chunks), raw: false });
        });
        res.on("error", reject);
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end(r.body);
  });
}

/** One request on a socket of its own (`Connection: close`), read until the server closes it. */
function viaSocket(port: number, r: FuzzRequest, timeoutMs: number): Promise<FuzzAnswer> {
  return new Promise((resolve, reject) => {
    const lines = [`${r.method} ${r.path} HTTP/1.1`, "host: 127.0.0.1", "connection: close"];
    for (const [name, value] of r.headers) lines.push(`${name}: ${value}`);
    if (r.body) lines.push(`content-length: ${r.body.length}`);
    const head = Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "utf8");
    const socket = net.connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    // written, not ended: a half-closed socket gets no answer from the auth service's raw-bytes listener
    // (a net.Server without allowHalfOpen ends its side at our FIN), which MongooseIM never does to it
    socket.on("connect", () => socket.write(r.body ? Buffer.concat([head, r.body]) : head));
    socket.on("data", (c: Buffer) => chunks.push(c));
    // the server may close before reading all we wrote: a reset after its answer is still its answer
    socket.on("error", (err) => {
      if (chunks.length === 0) {
        clearTimeout(timer);
        reject(err);
      }
    });
    socket.on("close", () => {
      clearTimeout(timer);
      const all = Buffer.concat(chunks);
      const end = all.indexOf("\r\n\r\n");
      if (end < 0) {
        reject(new Error(`no answer; received ${JSON.stringify(all.toString("latin1").slice(0, 200))}`));
        return;
      }
      const [statusLine = "", ...headerLines] = all.subarray(0, end).toString("latin1").split("\r\n");
      const headers: Record<string, string> = {};
      for (const line of headerLines) {
        const colon = line.indexOf(":");
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      // a header value holding CR LF CR LF ends our head early: the rest is a second request, whose answer
      // follows the first one's Content-Length bytes
      const length = headers["content-length"];
      const body = all.subarray(end + 4, length === undefined ? undefined : end + 4 + Number(length));
      resolve({ status: Number(statusLine.split(" ")[1]), headers, body, raw: true });
    });
  });
}

export interface CapturedLog {
  /** every line at level error (50) and above, parsed */
  errors: LogLine[];
  log: Logger;
}

/** A pino logger at `warn` whose lines at level ≥ 50 are kept (the others are dropped). */
export function capturingLogger(): CapturedLog {
  const { lines, log } = recordingLogger({ level: "warn", keep: (line) => line.level >= 50 });
  return { errors: lines, log };
}
