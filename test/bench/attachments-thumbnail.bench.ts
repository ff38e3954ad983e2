import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import sharp from "sharp";
import { freePort } from "../support/free-port.ts";
import { noisePixels, startAttachmentsService, uploadOnce } from "./attachments-support.ts";
import { startChildServer } from "./child-server.ts";
import type { Benchmark } from "./frame.ts";
import { processTree } from "./process-cpu.ts";
import { expectAnswer, wrkSide } from "./wrk.ts";

/** As the issue: 64 connections, one request in flight on each. */
const CONNECTIONS = 64;
/** `npm start` runs http-utility with a cluster worker per core (ecosystem.config.js `instances: "max"`). */
const WORKERS = os.availableParallelism();
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

/**
 * nginx's own config: one worker, in the foreground, everything under `dir`. One server serves `root` as a
 * static file server (the baseline); the other proxies to http-utility with `media.accelRedirect`, sending the
 * files http-utility names from the internal location, as docs/attachments.md shows it.
 */
function nginxConf(
  dir: string,
  o: { root: string; port: number; accelPort: number; upstream: string; accelRoot: string },
): string {
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
  upstream sidecars { server ${o.upstream}; keepalive 64; }
  server {
    listen 127.0.0.1:${o.port};
    root ${o.root};
  }
  server {
    listen 127.0.0.1:${o.accelPort};
    location /api/ {
      proxy_pass http://sidecars;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
    location ${ACCEL} {
      internal;
      alias ${o.accelRoot}/;
    }
  }
}
`;
}

/** Where nginx's internal location for X-Accel-Redirect is (`media.accelRedirect`). */
const ACCEL = "/protected-media/";

/**
 * A small hot file, as `npm start` deploys http-utility (a cluster worker per core: ecosystem.config.js), against
 * nginx's sendfile from the page cache; wrk drives every side.
 */
export const benchmark: Benchmark = {
  name: "attachments-thumbnail",
  figure: "req/s",
  description:
    `GET of a ~10 KB WebP thumbnail (the upload answer's thumbnailUrl) by wrk, ${CONNECTIONS} connections: ` +
    `http-utility as npm start deploys it (${WORKERS} cluster workers, fs storage) vs nginx (1 worker, sendfile) ` +
    "serving the same file from disk; extras: bare node:http + fs.createReadStream (1 process), and nginx in " +
    "front of http-utility with media.accelRedirect (nginx sends the file); goal ratio >= 0.4",
  async start(ctx) {
    if (!existsSync(NGINX)) {
      throw new Error(`the baseline is nginx, and ${NGINX} is missing: apt-get install nginx (Debian)`);
    }
    const service = await startAttachmentsService(ctx, {}, { workers: WORKERS });
    // the same deployment handing the bytes to nginx (one worker here: nginx does the sending); both
    // started before any upload, since a start clears the bench domain's rows
    const accelService = await startAttachmentsService(ctx, { accelRedirect: ACCEL });
    const answer = await uploadOnce(service, "pictures", await noisyPicture(), "noise.jpg", "image/jpeg");
    if (!answer.thumbnailUrl) throw new Error("the picture got no thumbnail");
    const thumbnailPath = new URL(answer.thumbnailUrl).pathname;
    const name = path.basename(thumbnailPath);
    const file = service.fileOf(name);
    const data = await readFile(file);
    const meta = await sharp(data).metadata();
    console.error(
      `attachments-thumbnail: thumbnail ${name}: ${data.length} bytes, ${meta.width}×${meta.height} ${meta.format}`,
    );

    const accelAnswer = await uploadOnce(
      accelService,
      "pictures",
      await noisyPicture(),
      "noise.jpg",
      "image/jpeg",
    );
    const accelPath = new URL(accelAnswer.thumbnailUrl ?? "").pathname;
    const accelData = await readFile(accelService.fileOf(path.basename(accelPath)));

    const nginxPort = await freePort();
    const accelPort = await freePort();
    const nginxDir = path.join(service.workDir, "nginx");
    await mkdir(nginxDir);
    const conf = path.join(nginxDir, "nginx.conf");
    await writeFile(
      conf,
      nginxConf(nginxDir, {
        root: path.dirname(file),
        port: nginxPort,
        accelPort,
        upstream: new URL(accelService.url).host,
        accelRoot: accelService.storageRoot,
      }),
    );
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

    const accelBase = `http://127.0.0.1:${accelPort}`;
    const want = { contentType: /^image\/webp$/, body: data };
    await expectAnswer(service.url + thumbnailPath, want);
    await expectAnswer(`${nginx.url}/${name}`, want);
    await expectAnswer(`${bare.url}/${name}`, want);
    await expectAnswer(accelBase + accelPath, { contentType: /^image\/webp$/, body: accelData });

    const load = { connections: CONNECTIONS, expectStatus: 200 };
    const tree = (server: { pid: number | undefined }) => () => processTree(server.pid as number);
    return {
      project: wrkSide(
        "http-utility",
        { ...load, base: service.url, paths: [thumbnailPath] },
        tree(service.server),
      ),
      baseline: wrkSide("nginx", { ...load, base: nginx.url, paths: [`/${name}`] }, tree(nginx)),
      extras: [
        wrkSide("node:http + fs stream", { ...load, base: bare.url, paths: [`/${name}`] }, tree(bare)),
        wrkSide(
          "nginx + http-utility X-Accel-Redirect",
          { ...load, base: accelBase, paths: [accelPath] },
          () => [...processTree(nginx.pid as number), ...processTree(accelService.server.pid as number)],
        ),
      ],
    };
  },
};
