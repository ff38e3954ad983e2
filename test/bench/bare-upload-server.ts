import { createWriteStream } from "node:fs";
import http from "node:http";
import path from "node:path";
import { pipeline } from "node:stream";

// The baseline of attachments-upload-throughput.bench.ts: the least a Node server does to store an upload,
// the request body piped as it is (no multipart parsing, no hashing, no fsync) into a new file under <dir>;
// answers 201 with the byte count. Usage: node test/bench/bare-upload-server.ts <port> <dir>

const [portText, dir] = process.argv.slice(2);
const port = Number(portText);
if (!Number.isInteger(port) || port <= 0 || !dir) {
  console.error("usage: bare-upload-server.ts <port> <dir>");
  process.exit(2);
}

let next = 0;
const server = http.createServer((req, res) => {
  if (req.method !== "POST") {
    res.writeHead(req.method === "GET" ? 200 : 404).end();
    return;
  }
  const file = createWriteStream(path.join(dir, `upload-${process.pid}-${next++}`), { flags: "wx" });
  pipeline(req, file, (err) => {
    if (err) res.writeHead(500).end(err.message);
    else
      res
        .writeHead(201, { "content-type": "application/json" })
        .end(JSON.stringify({ size: file.bytesWritten }));
  });
});
server.keepAliveTimeout = 5000; // as services/common/src/http/server.ts
server.requestTimeout = 0;
server.listen(port, "127.0.0.1");

process.once("SIGTERM", () => {
  server.close(() => process.exit(0));
  server.closeIdleConnections();
});
