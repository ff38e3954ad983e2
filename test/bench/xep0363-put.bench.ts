import { mkdir, readdir, rm } from "node:fs/promises";
import path from "node:path";
import { freePort } from "../support/free-port.ts";
import { startChildServer } from "./child-server.ts";
import type { Benchmark } from "./frame.ts";
import { FILE, IN_FLIGHT, MiB, startUploadService, uploadSide } from "./xep0363-support.ts";

/** XEP-0363 PUTs through MongooseIM's presigned URLs against the least a Node server does to store a body. */
export const benchmark: Benchmark = {
  name: "xep0363-put",
  figure: "uploads/s",
  description:
    `PUT of ${FILE.length / MiB} MiB files through MongooseIM-style presigned S3 URLs (a fresh slot each, signed by the ` +
    `client), ${IN_FLIGHT} in flight over keep-alive: http-utility (one process, fs storage: SigV4 check, slot ` +
    "reserved in PostgreSQL, SHA-256, fsync, row completed) vs bare node:http piping the body to a file " +
    "(test/bench/bare-upload-server.ts); goal ratio >= 0.7",
  async start(ctx) {
    const service = await startUploadService(ctx);
    const bareDir = path.join(service.workDir, "bare-uploads");
    await mkdir(bareDir);
    const port = await freePort();
    const bare = await startChildServer({
      name: "bare node:http upload",
      script: "test/bench/bare-upload-server.ts",
      args: [String(port), bareDir],
      url: `http://127.0.0.1:${port}`,
      readyPath: "/",
    });
    ctx.defer(bare.stop);
    ctx.defer(() => service.clear());
    // one PUT checked end to end before the load: stored, and the same bytes back
    const probe = service.slot("probe.bin");
    const put = await fetch(probe.put, { method: "PUT", body: FILE, headers: probe.headers });
    const back = Buffer.from(await (await fetch(probe.get)).arrayBuffer());
    if (put.status !== 201 || !back.equals(FILE))
      throw new Error(`probe: PUT ${put.status}, GET ${back.length} bytes`);
    await service.clear();
    return {
      project: uploadSide(
        "http-utility",
        () => {
          const s = service.slot();
          return { url: s.put, method: "PUT", headers: s.headers };
        },
        () => service.clear(),
      ),
      baseline: uploadSide(
        "node:http -> file",
        () => ({
          url: `${bare.url}/upload`,
          method: "POST",
          headers: { "content-type": "application/octet-stream" },
        }),
        async () => {
          for (const f of await readdir(bareDir)) await rm(path.join(bareDir, f), { force: true });
        },
      ),
    };
  },
};
