import { execFile } from "node:child_process";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { pino } from "pino";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPosterMaker } from "./video-poster.ts";

/**
 * Video posters with the real ffmpeg, on videos ffmpeg makes here; and what happens without it, with a
 * broken input, a program that hangs and one that never stops writing.
 */

const run = promisify(execFile);

let dir: string;
let twoSeconds: string;
let halfSecond: string;

/** A real logger writing into an array, to count warn lines. */
function capturingLog() {
  const lines: Array<{ level: number; msg: string }> = [];
  const log = pino({ level: "warn" }, { write: (line: string) => lines.push(JSON.parse(line)) });
  return { log, lines };
}

async function video(name: string, duration: number, codec: string[]): Promise<string> {
  const file = join(dir, name);
  const source = `testsrc=duration=${duration}:size=320x240:rate=10`;
  await run("ffmpeg", ["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", source, ...codec, file]);
  return file;
}

async function script(name: string, body: string): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, `#!/bin/sh\n${body}\n`);
  await chmod(file, 0o755);
  return file;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "video-poster-test-"));
  twoSeconds = await video("two.mp4", 2, ["-pix_fmt", "yuv420p"]);
  halfSecond = await video("half.webm", 0.5, ["-c:v", "libvpx-vp9", "-pix_fmt", "yuv420p"]);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("poster", () => {
  it("takes a PNG frame of a video", async () => {
    const { log, lines } = capturingLog();
    const posters = createPosterMaker({ ffmpeg: "ffmpeg", log });
    expect(await posters.available()).toBe(true);
    const frame = await posters.poster(twoSeconds);
    expect(frame).toBeInstanceOf(Buffer);
    expect(await sharp(frame).metadata()).toMatchObject({ format: "png", width: 320, height: 240 });
    expect(lines).toEqual([]);
  });

  it("takes the first frame of a video shorter than the seek time", async () => {
    const { log, lines } = capturingLog();
    const frame = await createPosterMaker({ ffmpeg: "ffmpeg", log }).poster(halfSecond);
    expect(await sharp(frame).metadata()).toMatchObject({ format: "png", width: 320, height: 240 });
    expect(lines).toEqual([]);
  });

  it("gives no poster for a file that is not a video, with one warn line", async () => {
    const { log, lines } = capturingLog();
    const text = join(dir, "notes.mp4");
    await writeFile(text, "these are not the frames you are looking for\n");
    expect(await createPosterMaker({ ffmpeg: "ffmpeg", log }).poster(text)).toBeUndefined();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 40, msg: "no video poster: ffmpeg failed" });
  });

  it("does not follow a concat script disguised as a video to a neighbouring upload", async () => {
    // without the demuxer whitelist ffmpeg would read `two.mp4` through this script
    const { log, lines } = capturingLog();
    const script = join(dir, "script.mp4");
    await writeFile(script, "ffconcat version 1.0\nfile two.mp4\n");
    expect(await createPosterMaker({ ffmpeg: "ffmpeg", log }).poster(script)).toBeUndefined();
    expect(JSON.stringify(lines[0])).toContain("not on whitelist");
  });

  it("gives no poster for a missing file", async () => {
    const { log } = capturingLog();
    expect(await createPosterMaker({ ffmpeg: "ffmpeg", log }).poster(join(dir, "gone.mp4"))).toBeUndefined();
  });

  it("gives no poster without ffmpeg, warning once", async () => {
    const { log, lines } = capturingLog();
    const posters = createPosterMaker({ ffmpeg: "ffmpeg-that-is-not-installed", log });
    expect(await posters.available()).toBe(false);
    expect(await posters.poster(twoSeconds)).toBeUndefined();
    expect(await posters.poster(twoSeconds)).toBeUndefined();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 40, msg: "ffmpeg not found: videos get no poster" });
  });

  it("kills a program that takes too long", async () => {
    const { log, lines } = capturingLog();
    const hanging = await script("hanging-ffmpeg", "exec sleep 30");
    const started = Date.now();
    expect(
      await createPosterMaker({ ffmpeg: hanging, log, timeoutMs: 300 }).poster(twoSeconds),
    ).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(lines).toHaveLength(1);
    expect(JSON.stringify(lines[0])).toContain("timed out after");
  });

  it("runs ffmpeg on one thread under prlimit's CPU-time and address-space limits", async () => {
    const { log } = capturingLog();
    const seen = join(dir, "seen.txt");
    // a stand-in ffmpeg that writes down its limits and arguments, then fails like a broken input
    const spy = await script("spy-ffmpeg", `cat /proc/$$/limits > ${seen}\necho "$@" >> ${seen}\nexit 1`);
    const limits = { cpuSeconds: 7, addressSpaceBytes: 900 * 1024 * 1024 };
    expect(await createPosterMaker({ ffmpeg: spy, log, limits }).poster(twoSeconds)).toBeUndefined();
    const text = await readFile(seen, "utf8");
    expect(text).toMatch(/^Max cpu time\s+7\s+7\s+seconds/m);
    expect(text).toMatch(
      new RegExp(`^Max address space\\s+${900 * 1024 * 1024}\\s+${900 * 1024 * 1024}\\s+bytes`, "m"),
    );
    expect(text).toContain("-threads 1 -filter_threads 1 -ss 1");
  });

  it("stops a program that spins at its CPU-time limit, before the wall-clock timeout", async () => {
    const { log, lines } = capturingLog();
    const spinning = await script("spinning-ffmpeg", "while :; do :; done");
    const started = Date.now();
    const posters = createPosterMaker({
      ffmpeg: spinning,
      log,
      limits: { cpuSeconds: 1, timeoutMs: 60_000 },
    });
    expect(await posters.poster(twoSeconds)).toBeUndefined();
    // 1 s of CPU, however slowly the machine hands it out; far from the 60 s timeout
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(lines).toHaveLength(1);
    expect(JSON.stringify(lines[0])).toContain("CPU-time limit");
  });

  it("without prlimit, makes no poster and says how to fix it, once", async () => {
    const { log, lines } = capturingLog();
    const posters = createPosterMaker({
      ffmpeg: "ffmpeg",
      log,
      limits: { prlimit: "prlimit-not-installed" },
    });
    expect(await posters.poster(twoSeconds)).toBeUndefined();
    expect(await posters.poster(twoSeconds)).toBeUndefined();
    expect(lines).toHaveLength(1);
    expect(lines[0]?.msg).toContain("prlimit (util-linux) not found");
  });

  it("skips the poster of a video beyond the slots and queue, with a warning", async () => {
    const { log, lines } = capturingLog();
    const posters = createPosterMaker({ ffmpeg: "ffmpeg", log, limits: { slots: 1, queue: 0 } });
    const frames = await Promise.all([posters.poster(twoSeconds), posters.poster(twoSeconds)]);
    expect(frames.filter((f) => f instanceof Buffer)).toHaveLength(1);
    expect(lines.map((l) => l.msg)).toEqual(["no video poster: too many videos at once"]);
  });

  it("stops reading a program that writes without end", async () => {
    const { log, lines } = capturingLog();
    const endless = await script("endless-ffmpeg", "exec cat /dev/zero");
    expect(await createPosterMaker({ ffmpeg: endless, log }).poster(twoSeconds)).toBeUndefined();
    expect(JSON.stringify(lines[0])).toContain("frame larger than");
  });
});
