import { type ChildProcessByStdio, spawn } from "node:child_process";
import { resolve } from "node:path";
import type { Readable } from "node:stream";
import { type MediaConfig, postersSchema } from "#common/config/media-schema.ts";
import type { Logger } from "#common/logger.ts";
import { createSlots } from "./slots.ts";

/**
 * A video's poster: one frame, as PNG, taken by ffmpeg one second in (or at the start of a shorter
 * video). ffmpeg runs without a shell, reads only local files in the containers uploads may be (an
 * uploaded HLS playlist or concat script could otherwise make it fetch URLs or read other files), is
 * killed after a timeout and may write at most MAX_FRAME_BYTES. Without ffmpeg videos simply have no poster.
 *
 * A crafted video can make a decoder spin or allocate: each ffmpeg decodes on one thread (`-threads 1`),
 * under `prlimit` (util-linux) limits on CPU seconds and address space, and at most `slots` run at once with
 * `queue` more waiting; a video beyond the queue, or whose poster does not fit the limits, is stored without
 * one (a warn line).
 */

export interface PosterMaker {
  /** whether the ffmpeg program runs at all (asked once) */
  available(): Promise<boolean>;
  /** the PNG of one frame, or undefined when there is none to have: never throws */
  poster(inputFile: string): Promise<Buffer | undefined>;
}

export type PosterLimits = MediaConfig["posters"];

export interface PosterOptions {
  ffmpeg: string;
  log: Logger;
  /** `media.posters`; its defaults otherwise */
  limits?: Partial<PosterLimits>;
  /** overrides `limits.timeoutMs` */
  timeoutMs?: number;
}

const SEEK_SECONDS = 1;
const MAX_FRAME_BYTES = 64 * 1024 * 1024;
/** ffmpeg demuxers of the accepted video types: mp4, quicktime, 3gpp (mov); webm, matroska (matroska) */
const DEMUXERS = "mov,matroska";

type Outcome =
  | { kind: "ok"; stdout: Buffer }
  | { kind: "missing"; program: string }
  | { kind: "failed"; reason: string };

/** prlimit's exit code when it cannot find the program it was to run (util-linux `errexec`) */
const EXEC_NOT_FOUND = 127;

export function createPosterMaker(options: PosterOptions): PosterMaker {
  const { ffmpeg, log } = options;
  const limits: PosterLimits = { ...postersSchema.parse(undefined), ...options.limits };
  const timeoutMs = options.timeoutMs ?? limits.timeoutMs;
  const slots = createSlots(limits);
  const rlimits = [
    ...(limits.cpuSeconds > 0 ? [`--cpu=${limits.cpuSeconds}`] : []),
    ...(limits.addressSpaceBytes > 0 ? [`--as=${limits.addressSpaceBytes}`] : []),
  ];
  // prlimit sets the limits on itself and then execs ffmpeg: the same process, killed by the same timer
  const [program, prefix] = rlimits.length > 0 ? [limits.prlimit, [...rlimits, "--", ffmpeg]] : [ffmpeg, []];
  let warnedMissing = false;
  let availability: Promise<boolean> | undefined;

  function missing(which: string): undefined {
    if (!warnedMissing) {
      warnedMissing = true;
      if (which === ffmpeg) log.warn({ ffmpeg }, "ffmpeg not found: videos get no poster");
      else {
        log.warn(
          { prlimit: which },
          "prlimit (util-linux) not found: videos get no poster; install util-linux, or set media.posters.cpuSeconds and addressSpaceBytes to 0 to run ffmpeg without limits",
        );
      }
    }
    return undefined;
  }

  function run(args: string[], ms: number): Promise<Outcome> {
    return new Promise((settle) => {
      let child: ChildProcessByStdio<null, Readable, Readable>;
      try {
        child = spawn(program, [...prefix, ...args], {
          stdio: ["ignore", "pipe", "pipe"],
          windowsHide: true,
        });
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
        settle(
          err.code === "ENOENT" ? { kind: "missing", program } : { kind: "failed", reason: err.message },
        );
      });
      child.on("close", (code, signal) => {
        clearTimeout(timer);
        if (problem) settle({ kind: "failed", reason: problem });
        else if (program !== ffmpeg && code === EXEC_NOT_FOUND && stderr.includes("failed to execute")) {
          settle({ kind: "missing", program: ffmpeg });
        } else if (signal === "SIGXCPU" || signal === "SIGKILL") {
          // the kernel's answer to RLIMIT_CPU (SIGXCPU at the soft limit, SIGKILL at the hard one)
          settle({ kind: "failed", reason: `killed by ${signal} (its CPU-time limit, or out of memory)` });
        } else if (code !== 0) {
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
    // one decoding thread: ffmpeg would otherwise start one per core for every poster
    "-threads",
    "1",
    "-filter_threads",
    "1",
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
    "-threads",
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
        if (outcome.kind === "missing") missing(outcome.program);
        else if (outcome.kind === "failed")
          log.warn({ ffmpeg, reason: outcome.reason }, "ffmpeg does not run");
        return outcome.kind === "ok";
      });
      return availability;
    },

    async poster(inputFile) {
      const outcome = await slots.run(() => posterNow(inputFile));
      if (outcome.ran) return outcome.value;
      log.warn(
        { file: inputFile, running: slots.running, waiting: slots.waiting },
        "no video poster: too many videos at once",
      );
      return undefined;
    },
  };

  async function posterNow(inputFile: string): Promise<Buffer | undefined> {
    const deadline = Date.now() + timeoutMs;
    // a video shorter than the seek time gives no frame there, and a clean exit: then its first frame
    for (const seconds of [SEEK_SECONDS, 0]) {
      const outcome = await run(frameAt(seconds, inputFile), Math.max(1, deadline - Date.now()));
      if (outcome.kind === "missing") return missing(outcome.program);
      if (outcome.kind === "failed") {
        log.warn({ file: inputFile, reason: outcome.reason }, "no video poster: ffmpeg failed");
        return undefined;
      }
      if (outcome.stdout.length > 0) return outcome.stdout;
    }
    log.warn({ file: inputFile }, "no video poster: ffmpeg found no frame");
    return undefined;
  }
}
