import sharp from "sharp";
import type { UploadAnswer } from "../../services/http-utility/src/attachments/schema.ts";
import { noisePixels } from "./attachments-support.ts";
import type { BenchContext, BenchSides } from "./frame.ts";
import { type HttpUtilitySide, startHttpUtilityPair, USER_AUTHORIZATION } from "./scale-http-utility.ts";
import { expectAnswer, wrkSide } from "./wrk.ts";

/**
 * The download of a real thumbnail (as attachments-thumbnail.bench.ts: a 1024×1024 JPEG uploaded through the
 * API, its 128 px WebP thumbnail fetched by wrk), from http-utility on the big database and on the empty one.
 */

export const CONNECTIONS = 64;

async function picture(): Promise<Buffer> {
  const side = 52;
  return sharp(noisePixels(side, side, 1), { raw: { width: side, height: side, channels: 3 } })
    .resize(1024, 1024, { kernel: "cubic" })
    .jpeg({ quality: 90 })
    .toBuffer();
}

async function thumbnailOf(s: HttpUtilitySide, file: Buffer): Promise<{ path: string; data: Buffer }> {
  const form = new FormData();
  form.append("attachments", new Blob([new Uint8Array(file)], { type: "image/jpeg" }), "noise.jpg");
  const res = await fetch(`${s.url}/api/v1/attachments/pictures`, {
    method: "POST",
    headers: { authorization: USER_AUTHORIZATION },
    body: form,
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  if (res.status !== 201)
    throw new Error(`${s.server.name}: upload answered ${res.status} ${text.slice(0, 300)}`);
  const answer = (JSON.parse(text) as { attachments: UploadAnswer[] }).attachments[0];
  if (!answer?.thumbnailUrl) throw new Error(`${s.server.name}: the picture got no thumbnail`);
  const path = new URL(answer.thumbnailUrl).pathname;
  const res2 = await fetch(s.url + path);
  return { path, data: Buffer.from(await res2.arrayBuffer()) };
}

export async function downloadSides(ctx: BenchContext, media: Record<string, unknown>): Promise<BenchSides> {
  const pair = await startHttpUtilityPair(ctx, { media });
  const file = await picture();
  const sides = [];
  for (const [label, s] of [
    ["1M attachment rows", pair.big],
    ["empty", pair.empty],
  ] as const) {
    const { path, data } = await thumbnailOf(s, file);
    await expectAnswer(s.url + path, { contentType: /^image\/webp$/, body: data });
    sides.push(
      wrkSide(label, { base: s.url, paths: [path], connections: CONNECTIONS, expectStatus: 200 }, s.pids),
    );
  }
  const [project, baseline] = sides;
  if (!project || !baseline) throw new Error("no sides");
  return { project, baseline };
}
