import { createWriteStream } from "node:fs";
import { open } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { pipeline } from "node:stream";

// The baseline of the upload benchmarks (attachments-upload-throughput, xep0363-put): the least a Node server
// does to store an upload, the request body piped as it is (no multipart parsing, no hashing) into a new file
// under <dir>; answers 201 with the byte count. With `fsync`, the least a server does to store it durably, as
// the fs storage must before it answers (services/common/src/media/fs-storage.ts): the file flushed before it
// is closed, then its directory (the new name). Without, nothing is flushed: a crash may lose an answered file.
// Usage: node test/bench/bare-upload-server.ts <port> <dir> [fsync]

const [portText, dir, mode] = process.argv.slice(2);
const port = Number(portText);
if (!Number.isInteger(port) || port <= 0 || !dir || (mode !== undefined && mode !== "fsync")) {
  console.error("usage: bare-upload-server.ts <port> <dir> [fsync]");
  process.exit(2);
}
const durable = mode === "fsync";

async function syncDir(): Promise<void> {
  const handle = await open(dir as string, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

let next = 0;
const server = http.createServer((req, res) => {
  if (req.method !== "POST") {
    res.writeHead(req.method === "GET" ? 200 : 404).end();
    return;
  }
  const file = createWriteStream(path.join(dir as string, `upload-${process.pid}-${next++}`), {
    flags: "wx",
    flush: durable,
  });
  pipeline(req, file, (err) => {
    const done = err ? Promise.reject(err) : durable ? syncDir() : Promise.resolve();
    done.then(
      () =>
        res
          .writeHead(201, { "content-type": "application/json" })
          .end(JSON.stringify({ size: file.bytesWritten })),
      (e: Error) => res.writeHead(500).end(e.message),
    );
  });
});
server.keepAliveTimeout = 5000; // as services/common/src/http/server.ts
server.requestTimeout = 0;
server.listen(port, "127.0.0.1");

process.once("SIGTERM", () => {
  server.close(() => process.exit(0));
  server.closeIdleConnections();
});
