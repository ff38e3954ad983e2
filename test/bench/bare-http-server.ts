import http from "node:http";

// The baselines: the least a Node server does to answer a GET with a fixed body (Content-Type and
// Content-Length set), whatever the path: `{"status":"ok"}` for healthz.bench.ts, `true` for the auth benches.
// Usage: node test/bench/bare-http-server.ts <port> <content-type> <body>

const [portText, contentType, text] = process.argv.slice(2);
const port = Number(portText);
if (!Number.isInteger(port) || port <= 0 || !contentType || text === undefined) {
  console.error("usage: bare-http-server.ts <port> <content-type> <body>");
  process.exit(2);
}

const body = Buffer.from(text);
const headers = { "content-type": contentType, "content-length": body.length };

const server = http.createServer((req, res) => {
  if (req.method === "GET") res.writeHead(200, headers).end(body);
  else res.writeHead(404).end();
});
server.keepAliveTimeout = 5000; // as services/common/src/http/server.ts
server.listen(port, "127.0.0.1");

process.once("SIGTERM", () => {
  server.close(() => process.exit(0));
  server.closeIdleConnections();
});
