import { readdir, rm } from "node:fs/promises";
import path from "node:path";
import { startBareUploadServer } from "./attachments-support.ts";
import { type Benchmark, median } from "./frame.ts";
import { FILE, IN_FLIGHT, MiB, startUploadService, uploadSide } from "./xep0363-support.ts";

/**
 * XEP-0363 PUTs through MongooseIM's presigned URLs against the least a Node server does to store a body
 * durably, as the fs storage must before it answers 201 (file and directory fsynced), and, beside it, the same
 * copy without any fsync (what the baseline was until issue 19: a crash may lose what it answered).
 */
export const benchmark: Benchmark = {
  name: "xep0363-put",
  figure: "uploads/s",
  description:
    `PUT of ${FILE.length / MiB} MiB files through MongooseIM-style presigned S3 URLs (a fresh slot each, signed by the ` +
    `client), ${IN_FLIGHT} in flight over keep-alive: http-utility (one process, fs storage: SigV4 check, slot ` +
    "reserved in PostgreSQL, SHA-256, file and directory fsynced, row completed) vs bare node:http piping the " +
    "body to a file it fsyncs with its directory (test/bench/bare-upload-server.ts fsync); the same copy " +
    "without fsync is the extra side; goal ratio >= 0.7",
  async start(ctx) {
    const service = await startUploadService(ctx);
    const durable = await startBareUploadServer(ctx, service.workDir, "fsync");
    const plain = await startBareUploadServer(ctx, service.workDir, "no-fsync");
    ctx.defer(() => service.clear());
    // one PUT checked end to end before the load: stored, and the same bytes back
    const probe = service.slot("probe.bin");
    const put = await fetch(probe.put, { method: "PUT", body: FILE, headers: probe.headers });
    const back = Buffer.from(await (await fetch(probe.get)).arrayBuffer());
    if (put.status !== 201 || !back.equals(FILE))
      throw new Error(`probe: PUT ${put.status}, GET ${back.length} bytes`);
    await service.clear();

    const values = { project: [] as number[], plain: [] as number[] };
    ctx.defer(() => {
      // the frame reports the extra side against the baseline; this is the project against it
      if (values.project.length < 2 || values.plain.length < 2) return;
      const [p, b] = [values.project, values.plain].map((v) => median(v.slice(1))) as [number, number];
      console.error(
        `xep0363-put: http-utility / bare copy without fsync: ${(p / b).toFixed(2)} (medians of the measured rounds)`,
      );
    });
    const bareSide = (label: string, b: typeof durable, record?: number[]) =>
      uploadSide(
        label,
        () => ({
          url: `${b.url}/upload`,
          method: "POST",
          headers: { "content-type": "application/octet-stream" },
        }),
        async () => {
          for (const f of await readdir(b.dir)) await rm(path.join(b.dir, f), { force: true });
        },
        { pids: () => [b.pid], ...(record ? { values: record } : {}) },
      );
    return {
      project: uploadSide(
        "http-utility",
        () => {
          const s = service.slot();
          return { url: s.put, method: "PUT", headers: s.headers };
        },
        () => service.clear(),
        { pids: () => (service.server.pid ? [service.server.pid] : []), values: values.project },
      ),
      baseline: bareSide("node:http -> file, fsync", durable),
      extras: [bareSide("node:http -> file, no fsync", plain, values.plain)],
    };
  },
};
