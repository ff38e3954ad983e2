import { type ChildProcessByStdio, spawn } from "node:child_process";
import { resolve } from "node:path";
import type { Readable } from "node:stream";
import type { Logger } from "../../../common/src/logger.ts";

/**
 * A video's poster: one frame, as PNG, taken by ffmpeg one second in (or at the start of a shorter
 * video). ffmpeg runs without a shell, reads only local files in the containers uploads may be (an
 * uploaded HLS playlist or concat script could otherwise make it fetch URLs or read other files), is
 * killed after a timeout and may write at most MAX_FRAME_BYTES. Without ffmpeg videos simply have no poster.
 */

export interface PosterMaker {
  /** whether the ffmpeg program runs at all (asked once) */
  available(): Promise<boolean>;
  /** the PNG of one frame, or undefined when there is none to have: never throws */
  poster(inputFile: string): Promise<Buffer | undefined>;
}

export interface PosterOptions {
  ffmpeg: string;
  log: Logger;
  timeoutMs?: number;
}

const SEEK_SECONDS = 1;
const MAX_FRAME_BYTES = 64 * 1024 * 1024;
/** ffmpeg demuxers of the accepted video types: mp4, quicktime, 3gpp (mov); webm, matroska (matroska) */
const DEMUXERS = "mov,matroska";

type Outcome = { kind: "ok"; stdout: Buffer } | { kind: "missing" } | { kind: "failed"; reason: string };

export function createPosterMaker({ ffmpeg, log, timeoutMs = 15_000 }: PosterOptions): PosterMaker {
  let warnedMissing = false;
  let availability: Promise<boolean> | undefined;

  function missing(): undefined {
    if (!warnedMissing) {
      warnedMissing = true;
      log.warn({ ffmpeg }, "ffmpeg not found: videos get no poster");
    }
    return undefined;
  }

  function run(args: string[], ms: number): Promise<Outcome> {
    return new Promise((settle) => {
      let child: ChildProcessByStdio<null, Readable, Readable>;
      try {
        child = spawn(ffmpeg, args, { stdio: ["ignore", "pipe", "pipe"], windowsHide: true });
      } catch (err) {
        settle({ kind: "failed", reason: (err as Error).message }); // e.g. a program name with a NUL byte
        return;
      }
      const chunks: Buffer[] = [];
      let bytes = 0;
      let stderr = "";
      let problem: string | undefined;
      const stop = (reason: string) => {
        problem ??= reason;
        child.kill("SIGKILL");
      };
      const timer = setTimeout(() => stop(`timed out after ${ms} ms`), ms);
      child.stdout.on("data", (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes > MAX_FRAME_BYTES) stop(`frame larger than ${MAX_FRAME_BYTES} bytes`);
        else chunks.push(chunk);
      });
      child.stderr.on("data", (chunk: Buffer) => {
        if (stderr.length < 4096) stderr += chunk.toString("utf8");
      });
      child.on("error", (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        settle(err.code === "ENOENT" ? { kind: "missing" } : { kind: "failed", reason: err.message });
      });
      child.on("close", (code, signal) => {
        clearTimeout(timer);
        if (problem) settle({ kind: "failed", reason: problem });
        else if (code !== 0) {
          const said = stderr.trim().split("\n").slice(-2).join(" / ").slice(0, 300);
          settle({ kind: "failed", reason: `exit ${code ?? signal}${said ? `: ${said}` : ""}` });
        } else settle({ kind: "ok", stdout: Buffer.concat(chunks) });
      });
    });
  }

  const frameAt = (seconds: number, file: string) => [
    "-hide_banner",
    "-nostdin",
    "-loglevel",
    "error",
    "-ss",
    String(seconds),
    "-format_whitelist",
    DEMUXERS,
    "-protocol_whitelist",
    "file",
    "-i",
    `file:${resolve(file)}`,
    "-frames:v",
    "1",
    "-f",
    "image2pipe",
    "-vcodec",
    "png",
    "-",
  ];

  return {
    available() {
      availability ??= run(["-hide_banner", "-version"], timeoutMs).then((outcome) => {
        if (outcome.kind === "missing") missing();
        else if (outcome.kind === "failed")
          log.warn({ ffmpeg, reason: outcome.reason }, "ffmpeg does not run");
        return outcome.kind === "ok";
      });
      return availability;
    },

    async poster(inputFile) {
      const deadline = Date.now() + timeoutMs;
      // a video shorter than the seek time gives no frame there, and a clean exit: then its first frame
      for (const seconds of [SEEK_SECONDS, 0]) {
        const outcome = await run(frameAt(seconds, inputFile), Math.max(1, deadline - Date.now()));
        if (outcome.kind === "missing") return missing();
        if (outcome.kind === "failed") {
          log.warn({ file: inputFile, reason: outcome.reason }, "no video poster: ffmpeg failed");
          return undefined;
        }
        if (outcome.stdout.length > 0) return outcome.stdout;
      }
      log.warn({ file: inputFile }, "no video poster: ffmpeg found no frame");
      return undefined;
    },
  };
}
