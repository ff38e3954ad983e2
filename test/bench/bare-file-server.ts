import { createReadStream, statSync } from "node:fs";
import http from "node:http";
import { pipeline } from "node:stream";

// An extra side of attachments-thumbnail.bench.ts: the least a Node server does to send a file from disk, a
// fresh fs.createReadStream piped to the answer per request (Content-Type and Content-Length set), whatever
// the path. Usage: node test/bench/bare-file-server.ts <port> <content-type> <file>

const [portText, contentType, file] = process.argv.slice(2);
const port = Number(portText);
if (!Number.isInteger(port) || port <= 0 || !contentType || !file) {
  console.error("usage: bare-file-server.ts <port> <content-type> <file>");
  process.exit(2);
}

const headers = { "content-type": contentType, "content-length": statSync(file).size };

const server = http.createServer((req, res) => {
  if (req.method !== "GET") {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, headers);
  pipeline(createReadStream(file), res, () => {});
});
server.keepAliveTimeout = 5000; // as services/common/src/http/server.ts
server.listen(port, "127.0.0.1");

process.once("SIGTERM", () => {
  server.close(() => process.exit(0));
  server.closeIdleConnections();
});
