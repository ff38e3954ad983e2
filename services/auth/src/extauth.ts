import type { Readable, Writable } from "node:stream";
import type { Logger } from "#common/logger.ts";
import type { Jid } from "#common/users/jid.ts";
import type { AuthApi } from "./core/auth-core.ts";

/**
 * ejabberd's external authentication protocol ("extauth", docs/auth.md "ejabberd (extauth)";
 * ejabberd's src/extauth.erl): on stdin, frames of a 2-byte big-endian length and UTF-8 text
 * `op:user:server[:password]`; on stdout, for every frame in the same order, a 2-byte length (always 2)
 * and 0x0001 (true) or 0x0000 (false). ejabberd pairs answers with questions by order only, and restarts a
 * program that stays silent past its timeout, so every request is answered, in order, within `timeoutMs`:
 * a backend that is down or slow, an unknown op or a malformed frame all answer false.
 */

export type ExtauthApi = Pick<
  AuthApi,
  "checkPassword" | "userExists" | "setPassword" | "register" | "removeUser" | "removeUserValidate"
>;

const OPS_WITH_PASSWORD = ["auth", "setpass", "tryregister", "removeuser3"] as const;
const OPS_WITHOUT_PASSWORD = ["isuser", "removeuser"] as const;
/** Ops ejabberd may send that we recognise but do not serve (certauth: SASL EXTERNAL). */
const OPS_UNSUPPORTED = ["certauth"] as const;

export type ExtauthRequest =
  | { op: (typeof OPS_WITH_PASSWORD)[number]; jid: Jid; password: string }
  | { op: (typeof OPS_WITHOUT_PASSWORD)[number]; jid: Jid };

const isOneOf = <T extends string>(list: readonly T[], value: string): value is T =>
  (list as readonly string[]).includes(value);

/**
 * `op:user:server[:password]`. Only the first three separators split: the password may contain ':'.
 * undefined for anything else (unknown op, missing or extra fields, empty user or server).
 */
export function parseRequest(text: string): ExtauthRequest | undefined {
  const fields: string[] = [];
  let rest = text;
  for (let i = 0; i < 3; i++) {
    const colon = rest.indexOf(":");
    if (colon < 0) break;
    fields.push(rest.slice(0, colon));
    rest = rest.slice(colon + 1);
  }
  fields.push(rest);
  const [op = "", node = "", domain = "", password] = fields;
  if (node === "" || domain === "") return undefined;
  if (isOneOf(OPS_WITH_PASSWORD, op) && password !== undefined) {
    return { op, jid: { node, domain }, password };
  }
  if (isOneOf(OPS_WITHOUT_PASSWORD, op) && password === undefined) return { op, jid: { node, domain } };
  return undefined;
}

/** Cuts a byte stream into frames, whatever the chunking: a frame split across chunks, several in one. */
export class FrameReader {
  #buffer: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Buffer[] {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    const frames: Buffer[] = [];
    let offset = 0;
    while (this.#buffer.length - offset >= 2) {
      const length = this.#buffer.readUInt16BE(offset);
      if (this.#buffer.length - offset - 2 < length) break;
      frames.push(this.#buffer.subarray(offset + 2, offset + 2 + length));
      offset += 2 + length;
    }
    this.#buffer = this.#buffer.subarray(offset);
    return frames;
  }

  /** Bytes of an incomplete frame still waiting for the rest. */
  get pendingBytes(): number {
    return this.#buffer.length;
  }
}

export const TRUE_ANSWER = Buffer.from([0, 2, 0, 1]);
export const FALSE_ANSWER = Buffer.from([0, 2, 0, 0]);

export async function decide(api: ExtauthApi, r: ExtauthRequest): Promise<boolean> {
  switch (r.op) {
    case "auth":
      return api.checkPassword(r.jid, r.password);
    case "isuser":
      return api.userExists(r.jid);
    case "setpass":
      return (await api.setPassword(r.jid, r.password)) === "ok";
    case "tryregister":
      return (await api.register(r.jid, r.password)) === "created";
    case "removeuser":
      return (await api.removeUser(r.jid)) === "removed";
    case "removeuser3":
      return (await api.removeUserValidate(r.jid, r.password)) === "removed";
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** What a log line may say about a frame: never the password, never an unknown first field (it could be one). */
function describe(frame: Buffer, r: ExtauthRequest | undefined): Record<string, unknown> {
  if (r) return { op: r.op, user: r.jid.node, server: r.jid.domain };
  const op = frame.subarray(0, Math.max(frame.indexOf(":"), 0)).toString("latin1");
  const known = [...OPS_WITH_PASSWORD, ...OPS_WITHOUT_PASSWORD, ...OPS_UNSUPPORTED] as readonly string[];
  return { op: known.includes(op) ? op : "(unknown)", bytes: frame.length };
}

export interface ExtauthOptions {
  api: ExtauthApi;
  input: Readable;
  output: Writable;
  log: Logger;
  /** Bound on one answer; past it the answer is false (ejabberd 23.01 gives up after 30 s and restarts us). */
  timeoutMs?: number;
}

/** Answers one frame: the decision, or false when it is malformed, fails or takes longer than `timeoutMs`. */
async function answerFrame(frame: Buffer, o: ExtauthOptions, timeoutMs: number): Promise<boolean> {
  let request: ExtauthRequest | undefined;
  try {
    request = parseRequest(utf8.decode(frame));
  } catch {
    request = undefined; // not UTF-8
  }
  const about = describe(frame, request);
  if (!request) {
    o.log.warn(about, "extauth: malformed or unsupported request, answering false");
    return false;
  }
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeoutMs);
  });
  try {
    const decided = Promise.resolve().then(() => decide(o.api, request));
    const result = await Promise.race([decided, timeout]);
    const ms = Math.round(performance.now() - started);
    if (result === "timeout") {
      decided.catch(() => {}); // it may still fail after we gave up
      o.log.warn({ ...about, timeoutMs }, "extauth: no decision in time, answering false");
      return false;
    }
    o.log.debug({ ...about, answer: result, ms }, "extauth");
    return result;
  } catch (err) {
    o.log.warn({ ...about, err: (err as Error).message }, "extauth: could not decide, answering false");
    return false;
  } finally {
    clearTimeout(timer);
  }
}

function write(output: Writable, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    output.write(data, (err) => (err ? reject(err) : resolve()));
  });
}

/**
 * Serves the protocol until `input` ends, then resolves once every request read has been answered.
 * One request at a time, as ejabberd sends them (one outstanding request per program): a request sees
 * the effects of the ones before it. Rejects only when `output` fails (the XMPP server went away).
 */
export async function runExtauth(o: ExtauthOptions): Promise<void> {
  const timeoutMs = o.timeoutMs ?? 5000;
  const reader = new FrameReader();
  // a failed write reaches us through its callback; without a listener the stream's `error` event
  // (EPIPE on stdout) would also crash the process as an uncaught exception
  const ignore = () => {};
  o.output.on("error", ignore);
  try {
    for await (const chunk of o.input as AsyncIterable<Buffer>) {
      for (const frame of reader.push(chunk)) {
        const yes = await answerFrame(frame, o, timeoutMs);
        await write(o.output, yes ? TRUE_ANSWER : FALSE_ANSWER);
      }
    }
  } finally {
    o.output.off("error", ignore);
  }
  if (reader.pendingBytes > 0) {
    o.log.warn({ bytes: reader.pendingBytes }, "extauth: input ended inside a frame");
  }
}
