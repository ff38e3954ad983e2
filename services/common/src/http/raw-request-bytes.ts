import { isAscii } from "node:buffer";
import type { Socket } from "node:net";

/**
 * MongooseIM 2.1.0 puts raw UTF-8 bytes (>= 0x80) in the query of its GET requests; Node's HTTP parser refuses
 * them with a bare 400 before any handler runs. Connections of the auth service therefore pass through this
 * encoder, which percent-encodes such bytes in each request line (the form decoder reads `%XX` back as the same
 * bytes). It follows HTTP/1.1 framing by Content-Length, so bodies and keep-alive requests pass untouched; a
 * chunked request, or a head over 64 KiB, switches the connection to plain pass-through.
 */
const MAX_HEAD = 64 * 1024;
const CRLFCRLF = Buffer.from("\r\n\r\n");
const EMPTY: Buffer = Buffer.alloc(0);

function encodeRequestLine(head: Buffer): Buffer {
  // the first non-empty line (clients may send CRLFs between requests)
  let start = 0;
  while (head[start] === 0x0d && head[start + 1] === 0x0a) start += 2;
  const end = head.indexOf("\r\n", start);
  const line = head.subarray(start, end < 0 ? head.length : end);
  if (isAscii(line)) return head;
  const parts: Buffer[] = [head.subarray(0, start)];
  for (const b of line)
    parts.push(b >= 0x80 ? Buffer.from(`%${b.toString(16).toUpperCase()}`) : Buffer.of(b));
  parts.push(head.subarray(start + line.length));
  return Buffer.concat(parts);
}

export class RequestLineEncoder {
  private pending: Buffer = EMPTY;
  private bodyLeft = 0;
  private passThrough = false;

  push(chunk: Buffer): Buffer {
    if (this.passThrough) return chunk;
    const out: Buffer[] = [];
    let data = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = EMPTY;
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
    return out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out);
  }
}

/**
 * Makes `socket` hand node:http its bytes through the encoder. node:http reads a plain socket straight from its
 * native handle unless the handle is marked as already consumed, in which case it listens to 'data' events,
 * which come from `push`: the encoder sits there, and writes go to the socket untouched.
 */
export function encodeRequestLines(socket: Socket): Socket {
  const encoder = new RequestLineEncoder();
  const push = socket.push.bind(socket);
  socket.push = (chunk: Buffer | null, encoding?: BufferEncoding) => {
    if (chunk === null) return push(null);
    const out = encoder.push(chunk);
    return out.length === 0 || push(out, encoding);
  };
  const handle = (socket as unknown as { _handle?: { _consumed?: boolean } })._handle;
  if (handle) handle._consumed = true;
  return socket;
}
