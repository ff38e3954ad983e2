import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { freePort } from "../support/free-port.ts";
import { startChildServer } from "./child-server.ts";
import type { Benchmark } from "./frame.ts";
import { processTree } from "./process-cpu.ts";
import { WRK, wrkSide } from "./wrk.ts";
import { FILE, IN_FLIGHT, MiB, startUploadService } from "./xep0363-support.ts";

const NGINX = "/usr/sbin/nginx";
const FILES = 32;

/** nginx's own config: one worker, in the foreground, everything under `dir`, serving `root` (sendfile). */
function nginxConf(dir: string, root: string, port: number): string {
  return `${process.getuid?.() === 0 ? "user root;\n" : ""}worker_processes 1;
daemon off;
pid ${path.join(dir, "nginx.pid")};
error_log ${path.join(dir, "error.log")} warn;
events { worker_connections 1024; }
http {
  default_type application/octet-stream;
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  keepalive_timeout 5s;
  client_body_temp_path ${path.join(dir, "client_body")};
  proxy_temp_path ${path.join(dir, "proxy")};
  fastcgi_temp_path ${path.join(dir, "fastcgi")};
  uwsgi_temp_path ${path.join(dir, "uwsgi")};
  scgi_temp_path ${path.join(dir, "scgi")};
  server {
    listen 127.0.0.1:${port};
    root ${root};
  }
}
`;
}

/** GETs of uploaded XEP-0363 files by their slot URLs against nginx sending the same files from disk. */
export const benchmark: Benchmark = {
  name: "xep0363-get",
  figure: "req/s",
  description:
    `GET of ${FILES} files of ${FILE.length / MiB} MiB uploaded through MongooseIM-style slots, cycling, by wrk ` +
    `(1 thread, ${IN_FLIGHT} keep-alive connections): http-utility (one process, slot URL -> row, fs stream) vs ` +
    "nginx (1 worker, sendfile) serving the very stored files; goal ratio >= 0.4",
  async start(ctx) {
    if (!existsSync(WRK)) throw new Error(`${WRK} is missing: apt-get install wrk (Debian)`);
    if (!existsSync(NGINX)) throw new Error(`${NGINX} is missing: apt-get install nginx (Debian)`);
    const service = await startUploadService(ctx);
    ctx.defer(() => service.clear());
    const project: string[] = [];
    const files: string[] = [];
    for (let i = 0; i < FILES; i++) {
      const s = service.slot(`file-${i}.bin`);
      const put = await fetch(s.put, { method: "PUT", body: FILE, headers: s.headers });
      if (put.status !== 201) throw new Error(`upload ${i}: ${put.status} ${await put.text()}`);
      project.push(new URL(s.get).pathname);
    }
    // the stored files, found by their rows: nginx serves exactly those
    const rows = await service.pool.query<{ name: string }>(
      "SELECT name FROM attachments WHERE kind = 'upload' ORDER BY created_at",
    );
    for (const r of rows.rows) files.push(`/${path.relative(service.storageRoot, service.fileOf(r.name))}`);
    if (files.length !== FILES) throw new Error(`${files.length} rows for ${FILES} uploads`);

    const nginxPort = await freePort();
    const nginxDir = path.join(service.workDir, "nginx");
    await mkdir(nginxDir);
    const conf = path.join(nginxDir, "nginx.conf");
    await writeFile(conf, nginxConf(nginxDir, service.storageRoot, nginxPort));
    const nginx = await startChildServer({
      name: "nginx",
      program: NGINX,
      args: ["-c", conf, "-p", nginxDir, "-e", path.join(nginxDir, "error.log")],
      url: `http://127.0.0.1:${nginxPort}`,
      readyPath: files[0] as string,
    });
    ctx.defer(nginx.stop);
    for (const [base, p] of [
      [service.url, project[0]],
      [nginx.url, files[0]],
    ] as const) {
      const body = Buffer.from(await (await fetch(`${base}${p}`)).arrayBuffer());
      if (!body.equals(FILE)) throw new Error(`${base}${p}: not the uploaded bytes (${body.length})`);
    }
    return {
      project: wrkSide(
        "http-utility",
        { base: service.url, paths: project, connections: IN_FLIGHT, expectStatus: 200 },
        () => processTree(service.server.pid as number),
      ),
      baseline: wrkSide(
        "nginx",
        { base: nginx.url, paths: files, connections: IN_FLIGHT, expectStatus: 200 },
        () => processTree(nginx.pid as number),
      ),
    };
  },
};
