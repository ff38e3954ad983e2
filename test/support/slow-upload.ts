import http from "node:http";

/**
 * A multipart upload written slowly (a chunk, a pause, a chunk), so that a process killed at a random moment
 * is killed with the upload in flight. Answers the status and body, or `cut` when the connection died first.
 */

export type UploadOutcome = { status: number; body: string } | { cut: string };

export interface SlowUpload {
  url: string;
  authorization: string;
  field: string;
  filename: string;
  contentType: string;
  data: Buffer;
  chunkBytes: number;
  /** pause after each chunk */
  pauseMs: () => number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function slowUpload(u: SlowUpload): Promise<UploadOutcome> {
  const boundary = `slowupload${Math.random().toString(16).slice(2)}`;
  const head = Buffer.from(
    `--${boundary}\r\ncontent-disposition: form-data; name="${u.field}"; filename="${u.filename}"\r\n` +
      `content-type: ${u.contentType}\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const body = Buffer.concat([head, u.data, tail]);
  return new Promise((resolve) => {
    let settled = false;
    const done = (o: UploadOutcome) => {
      if (!settled) {
        settled = true;
        resolve(o);
      }
    };
    const req = http.request(
      u.url,
      {
        method: "POST",
        agent: false,
        headers: {
          authorization: u.authorization,
          "content-type": `multipart/form-data; boundary=${boundary}`,
          "content-length": body.length,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => done({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.on("error", (err) => done({ cut: err.message }));
        res.on("aborted", () => done({ cut: "aborted" }));
      },
    );
    req.on("error", (err) => done({ cut: err.message }));
    (async () => {
      for (let at = 0; at < body.length && !settled && !req.destroyed; at += u.chunkBytes) {
        const more = req.write(body.subarray(at, at + u.chunkBytes));
        if (!more) {
          await new Promise<void>((r) => {
            const go = () => {
              req.off("drain", go).off("close", go);
              r();
            };
            req.on("drain", go).on("close", go);
          });
        }
        await sleep(u.pauseMs());
      }
      if (!req.destroyed) req.end();
    })().catch((err: Error) => done({ cut: err.message }));
  });
}
