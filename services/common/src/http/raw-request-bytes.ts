import type { Socket } from "node:net";
import { Duplex } from "node:stream";

/**
 * MongooseIM 2.1.0 puts raw UTF-8 bytes (>= 0x80) in the query of its GET requests; Node's HTTP parser refuses
 * them with a bare 400 before any handler runs. Connections of the auth service therefore pass through this
 * wrapper, which percent-encodes such bytes in each request line (the form decoder reads `%XX` back as the same
 * bytes). It follows HTTP/1.1 framing by Content-Length, so bodies and keep-alive requests pass untouched; a
 * chunked request, or a head over 64 KiB, switches the connection to plain pass-through.
 */
const MAX_HEAD = 64 * 1024;
const CRLFCRLF = Buffer.from("\r\n\r\n");

function encodeRequestLine(head: Buffer): Buffer {
  // the first non-empty line (clients may send CRLFs between requests)
  let start = 0;
  while (head[start] === 0x0d && head[start + 1] === 0x0a) start += 2;
  const end = head.indexOf("\r\n", start);
  const line = head.subarray(start, end < 0 ? head.length : end);
  if (!line.some((b) => b >= 0x80)) return head;
  const parts: Buffer[] = [head.subarray(0, start)];
  for (const b of line)
    parts.push(b >= 0x80 ? Buffer.from(`%${b.toString(16).toUpperCase()}`) : Buffer.of(b));
  parts.push(head.subarray(start + line.length));
  return Buffer.concat(parts);
}

export class RequestLineEncoder {
  private pending = Buffer.alloc(0);
  private bodyLeft = 0;
  private passThrough = false;

  push(chunk: Buffer): Buffer {
    if (this.passThrough) return chunk;
    const out: Buffer[] = [];
    let data = Buffer.concat([this.pending, chunk]);
    this.pending = Buffer.alloc(0);
    while (data.length > 0) {
      if (this.bodyLeft > 0) {
        const n = Math.min(this.bodyLeft, data.length);
        out.push(data.subarray(0, n));
        this.bodyLeft -= n;
        data = data.subarray(n);
        continue;
      }
      const end = data.indexOf(CRLFCRLF);
      if (end < 0) {
        if (data.length > MAX_HEAD) {
          this.passThrough = true; // the parser will refuse it with its own answer
          out.push(data);
        } else this.pending = data;
        break;
      }
      const head = data.subarray(0, end + 4);
      const headers = head.toString("latin1");
      if (/\r\ntransfer-encoding\s*:/i.test(headers)) {
        this.passThrough = true;
        out.push(encodeRequestLine(head), data.subarray(end + 4));
        break;
      }
      this.bodyLeft = Number(/\r\ncontent-length\s*:\s*(\d+)/i.exec(headers)?.[1] ?? 0);
      out.push(encodeRequestLine(head));
      data = data.subarray(end + 4);
    }
    return Buffer.concat(out);
  }
}

/** The socket as the HTTP server sees it: reads go through the encoder, everything else to the socket. */
export class EncodedRequestSocket extends Duplex {
  readonly socket: Socket;

  constructor(socket: Socket) {
    super({ allowHalfOpen: true });
    this.socket = socket;
    const encoder = new RequestLineEncoder();
    socket.on("data", (chunk: Buffer) => {
      const out = encoder.push(chunk);
      if (out.length > 0 && !this.push(out)) socket.pause();
    });
    socket.on("end", () => this.push(null));
    socket.on("timeout", () => this.emit("timeout"));
    socket.on("error", (err) => this.destroy(err));
    socket.on("close", () => this.destroy());
  }

  override _read(): void {
    this.socket.resume();
  }
  override _write(chunk: Buffer, encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    this.socket.write(chunk, encoding, done);
  }
  override _final(done: (err?: Error | null) => void): void {
    this.socket.end(done);
  }
  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.socket.destroy(err ?? undefined);
    done(err);
  }
  setTimeout(ms: number, callback?: () => void): this {
    this.socket.setTimeout(ms, callback);
    return this;
  }
  setNoDelay(noDelay?: boolean): this {
    this.socket.setNoDelay(noDelay);
    return this;
  }
  setKeepAlive(enable?: boolean, delay?: number): this {
    this.socket.setKeepAlive(enable, delay);
    return this;
  }
  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }
  get remotePort(): number | undefined {
    return this.socket.remotePort;
  }
  get localAddress(): string | undefined {
    return this.socket.localAddress;
  }
  get localPort(): number | undefined {
    return this.socket.localPort;
  }
}
