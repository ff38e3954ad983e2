import http from "node:http";

// The baseline of healthz.bench.ts: the least a Node server does to answer GET /healthz.
// Usage: node test/bench/bare-http-server.ts <port>

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error("usage: bare-http-server.ts <port>");
  process.exit(2);
}

const body = JSON.stringify({ status: "ok" });
const headers = { "content-type": "application/json", "content-length": Buffer.byteLength(body) };

const server = http.createServer((req, res) => {
  if (req.method === "GET" && req.url === "/healthz") {
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
