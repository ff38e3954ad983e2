import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import sharp from "sharp";
import { freePort } from "../support/free-port.ts";
import { noisePixels, startAttachmentsService, uploadOnce } from "./attachments-support.ts";
import { startChildServer } from "./child-server.ts";
import type { Benchmark } from "./frame.ts";
import { httpSide } from "./http-load.ts";

/** As the issue: 64 connections, one request in flight on each. */
const CONNECTIONS = 64;
const NGINX = "/usr/sbin/nginx";

/**
 * A 1024×1024 JPEG of smooth noise (52×52 seeded random pixels scaled up): its 128 px WebP thumbnail, as
 * images.ts encodes it now (quality 82, effort 2), is about 9 KB. (Finer noise does not give 10 KB: with
 * effort 2 the size jumps from about 9 KB to about 13-15 KB.)
 */
async function noisyPicture(): Promise<Buffer> {
  const side = 52;
  return sharp(noisePixels(side, side, 1), { raw: { width: side, height: side, channels: 3 } })
    .resize(1024, 1024, { kernel: "cubic" })
    .jpeg({ quality: 90 })
    .toBuffer();
}

/** nginx's own config: one worker, in the foreground, everything under `dir`, serving `root`. */
function nginxConf(dir: string, root: string, port: number): string {
  return `${process.getuid?.() === 0 ? "user root;\n" : ""}worker_processes 1;
daemon off;
pid ${path.join(dir, "nginx.pid")};
error_log ${path.join(dir, "error.log")} warn;
events { worker_connections 1024; }
http {
  types { image/webp webp; }
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

/** One GET, checked: 200, the type, and the very bytes of the stored file. */
async function expectBytes(url: string, want: Buffer, contentType: RegExp): Promise<void> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  const body = Buffer.from(await res.arrayBuffer());
  const type = res.headers.get("content-type") ?? "";
  if (res.status !== 200 || !contentType.test(type) || !body.equals(want)) {
    throw new Error(`${url}: answered ${res.status} ${type}, ${body.length} bytes (want ${want.length})`);
  }
}

/** A small hot file: the service's in-memory LRU against nginx's sendfile from the page cache. */
export const benchmark: Benchmark = {
  name: "attachments-thumbnail",
  figure: "req/s",
  description:
    `GET of a ~10 KB WebP thumbnail (the upload answer's thumbnailUrl) at ${CONNECTIONS} connections: ` +
    "http-utility (APP_ENV=test, fs storage) vs nginx (1 worker, sendfile) serving the same file from disk; " +
    "extra: bare node:http + fs.createReadStream; goal ratio >= 0.4",
  async start(ctx) {
    if (!existsSync(NGINX)) {
      throw new Error(`the baseline is nginx, and ${NGINX} is missing: apt-get install nginx (Debian)`);
    }
    const service = await startAttachmentsService(ctx);
    const answer = await uploadOnce(service, "pictures", await noisyPicture(), "noise.jpg", "image/jpeg");
    if (!answer.thumbnailUrl) throw new Error("the picture got no thumbnail");
    const name = path.basename(new URL(answer.thumbnailUrl).pathname);
    const file = service.fileOf(name);
    const data = await readFile(file);
    const meta = await sharp(data).metadata();
    console.error(
      `attachments-thumbnail: thumbnail ${name}: ${data.length} bytes, ${meta.width}×${meta.height} ${meta.format}`,
    );

    const nginxPort = await freePort();
    const nginxDir = path.join(service.workDir, "nginx");
    await mkdir(nginxDir);
    const conf = path.join(nginxDir, "nginx.conf");
    await writeFile(conf, nginxConf(nginxDir, path.dirname(file), nginxPort));
    const nginx = await startChildServer({
      name: "nginx",
      program: NGINX,
      args: ["-c", conf, "-p", nginxDir, "-e", path.join(nginxDir, "error.log")],
      url: `http://127.0.0.1:${nginxPort}`,
      readyPath: `/${name}`,
    });
    ctx.defer(nginx.stop);

    const barePort = await freePort();
    const bare = await startChildServer({
      name: "bare node:http + fs",
      script: "test/bench/bare-file-server.ts",
      args: [String(barePort), "image/webp", file],
      url: `http://127.0.0.1:${barePort}`,
      readyPath: `/${name}`,
    });
    ctx.defer(bare.stop);

    const urls = {
      project: answer.thumbnailUrl,
      nginx: `${nginx.url}/${name}`,
      bare: `${bare.url}/${name}`,
    };
    for (const url of Object.values(urls)) await expectBytes(url, data, /^image\/webp$/);
    return {
      project: httpSide("http-utility", { url: urls.project, connections: CONNECTIONS }),
      baseline: httpSide("nginx", { url: urls.nginx, connections: CONNECTIONS }),
      extras: [httpSide("node:http + fs stream", { url: urls.bare, connections: CONNECTIONS })],
    };
  },
};
