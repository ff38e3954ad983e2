import { rssBytes } from "../support/rss.ts";
import { type Probes, startProbes } from "./buddies-probes.ts";
import { type Started, startBareClients, startRunner, waitForSessions } from "./buddies-processes.ts";
import { type BuddiesBench, DOMAIN, startBuddiesBench, username } from "./buddies-support.ts";
import { type BenchContext, type Benchmark, median, type Sample, type Side } from "./frame.ts";

/** Buddies on one runner process, and bare connections on the baseline's one process. */
const BUDDIES = 500;
/** Clients timing echoes, one chat in flight each. */
const PROBES = 4;

interface OnlineSample extends Sample {
  /** Seconds from spawning the process until all BUDDIES were online. */
  onlineS: number;
  /** …until the first was. */
  firstOnlineS: number;
  /** The process's resident memory with all of them online, MB. */
  rssMB: number;
  /** Echoes timed. */
  echoes: number;
}

/**
 * One measurement of one side: start its process, time it until all BUDDIES are online, read its RSS,
 * time echoes to all of them in turn for `durationS`, stop it, and wait for ejabberd to see them gone.
 * `value` is BUDDIES / seconds until all online (higher is better, as the frame wants); p50/p99 are the
 * echo round trips.
 */
function side(
  label: string,
  b: BuddiesBench,
  probes: Probes,
  prefix: string,
  start: () => Promise<Started>,
  samples: OnlineSample[],
): Side {
  const targets = Array.from({ length: BUDDIES }, (_, i) => `${username(prefix, i)}@${DOMAIN}`);
  return {
    label,
    async measure(durationS) {
      const started = await start().catch(async (err: Error) => {
        const logs = await b.ej.logs();
        throw new Error(`${err.message}\n(ejabberd's logs, their end:)\n${logs.slice(-3000)}`);
      });
      let sample: OnlineSample;
      try {
        const rssMB = (await rssBytes(started.pid)) / 2 ** 20;
        const echo = await probes.echoLoad(targets, durationS);
        sample = {
          value: BUDDIES / started.onlineS,
          p50Ms: echo.p50Ms,
          p99Ms: echo.p99Ms,
          onlineS: started.onlineS,
          firstOnlineS: started.firstOnlineS,
          rssMB: Math.round(rssMB * 10) / 10,
          echoes: echo.count,
        };
      } finally {
        await started.stop();
        await waitForSessions(b.ej, PROBES);
      }
      console.error(
        `buddies-online  ${label}: first online after ${sample.firstOnlineS.toFixed(2)} s, ` +
          `all ${BUDDIES} after ${sample.onlineS.toFixed(2)} s, ` +
          `RSS ${sample.rssMB} MB, ${sample.echoes} echoes`,
      );
      samples.push(sample);
      return sample;
    },
  };
}

const spread = (values: number[], digits: number) =>
  `median ${median(values).toFixed(digits)} (${values.map((v) => v.toFixed(digits)).join(" ")})`;

/** The figures the table does not show: times, echo latencies and RSS of the rounds (the warm-up aside). */
function summary(project: OnlineSample[], baseline: OnlineSample[]): void {
  // the frame measures each side once to warm up before the rounds
  const [p, bare] = [project.slice(1), baseline.slice(1)];
  if (p.length === 0 || bare.length === 0) return;
  const ratio = (f: (s: OnlineSample) => number) => (median(p.map(f)) / median(bare.map(f))).toFixed(2);
  const row = (what: string, f: (s: OnlineSample) => number, digits: number, withRatio = true) =>
    `  ${what.padEnd(24)} runner ${spread(p.map(f), digits)}; bare ${spread(bare.map(f), digits)}` +
    (withRatio ? `; runner/bare ${ratio(f)}` : "");
  const lines = [
    `buddies-online summary (${p.length} rounds; warm-up, with cold password checks: ` +
      `runner ${project[0]?.onlineS.toFixed(2)} s, bare ${baseline[0]?.onlineS.toFixed(2)} s)`,
    row(`all ${BUDDIES} online, s:`, (s) => s.onlineS, 2),
    row("first online, s:", (s) => s.firstOnlineS, 2),
    row("echo p50, ms:", (s) => s.p50Ms ?? 0, 2),
    row("echo p99, ms:", (s) => s.p99Ms ?? 0, 2),
    row(`RSS at ${BUDDIES} online, MB:`, (s) => s.rssMB, 1),
  ];
  console.error(lines.join("\n"));
}

/** A runner process bringing its buddies online and answering through them, against bare @xmpp/client. */
export const benchmark: Benchmark = {
  name: "buddies-online",
  figure: "online/s",
  description:
    `${BUDDIES} echo buddies on one buddies runner (spawned per round) against ejabberd 23.01 with our extauth ` +
    `(checks cached after the warm-up) vs ${BUDDIES} bare @xmpp/client connections in one process, all ` +
    `started at once, each echoing: value ${BUDDIES} / s from spawn until all online; p50/p99 echo round ` +
    `trips from ${PROBES} probes, one chat in flight each, to every buddy in turn`,
  async start(ctx: BenchContext) {
    const b = await startBuddiesBench(ctx, { buddies: BUDDIES, probes: PROBES });
    const probes = await startProbes(ctx, b, PROBES);
    const project: OnlineSample[] = [];
    const baseline: OnlineSample[] = [];
    // cleanups run last first: this one after the rounds, before anything is stopped
    ctx.defer(() => summary(project, baseline));
    return {
      project: side("buddies runner", b, probes, "echo", () => startRunner(b, BUDDIES), project),
      baseline: side("bare @xmpp/client", b, probes, "bare", () => startBareClients(b, BUDDIES), baseline),
    };
  },
};
