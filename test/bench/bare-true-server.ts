import http from "node:http";

// The baseline of the auth benchmarks: the least a Node server does to answer one of MongooseIM's auth calls
// with `true` (text/plain, Content-Length), whatever the path and query.
// Usage: node test/bench/bare-true-server.ts <port>

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error("usage: bare-true-server.ts <port>");
  process.exit(2);
}

const body = Buffer.from("true");
const headers = { "content-type": "text/plain; charset=utf-8", "content-length": body.length };

const server = http.createServer((req, res) => {
  if (req.method === "GET") {
    res.writeHead(200, headers).end(body);
  } else {
    res.writeHead(404).end();
  }
});
server.keepAliveTimeout = 5000; // as services/common/src/http/server.ts
server.listen(port, "127.0.0.1");

process.once("SIGTERM", () => {
  server.close(() => process.exit(0));
  server.closeIdleConnections();
});
