import { readFileSync } from "node:fs";
import path from "node:path";
import { collectDefaultMetrics, Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { createTestDatabase, type TestDatabase } from "./support/database.ts";
import { ROOT } from "./support/processes.ts";
import { analysePromQL } from "./support/promql.ts";
import { type ExposedMetric, exposedMetrics, SCRAPE_LABELS } from "./support/service-metrics.ts";

/**
 * ops/ as an operator loads it (docs/operations.md "Dashboard and alerts"), checked without Prometheus or
 * Grafana: the alert rules are a valid rule file whose every alert says how bad it is and where its
 * runbook is, the dashboard imports onto a Prometheus chosen at import, and every query of both parses
 * with Prometheus' grammar and names only series and labels that the services' real registries hold.
 */

const ALERTS_FILE = "ops/alerts.yml";
const DASHBOARD_FILE = "ops/grafana-dashboard.json";
const OPERATIONS = readFileSync(path.join(ROOT, "docs/operations.md"), "utf8");

/** The series Prometheus writes itself for each target it scrapes. */
const PROMETHEUS_SERIES: ExposedMetric[] = [
  { name: "up", family: "up", type: "gauge", labels: new Set(SCRAPE_LABELS), services: new Set() },
];

/** Functions whose argument must be a counter: over a gauge they answer nonsense. */
const COUNTER_FUNCTIONS = new Set(["rate", "irate", "increase", "resets"]);

/** Prometheus' duration syntax, as `for:` takes it. */
const DURATION = /^(\d+(ms|[smhdwy]))+$/;

let db: TestDatabase;
let exposed: Map<string, ExposedMetric>;
beforeAll(async () => {
  db = await createTestDatabase();
  exposed = await exposedMetrics(db);
  for (const s of PROMETHEUS_SERIES) exposed.set(s.name, s);
});
afterAll(async () => {
  await db.drop();
});

const isCounter = (m: ExposedMetric) =>
  m.type === "counter" || (["histogram", "summary"].includes(m.type) && /_(bucket|sum|count)$/.test(m.name));

/** What is wrong with one query: syntax, unknown series or labels, rate() of a gauge. */
function problemsOf(where: string, expr: string): string[] {
  const { errors, selections, groupings } = analysePromQL(expr);
  const problems = errors.map((e) => `${where}: ${e}`);
  for (const s of selections) {
    if (!s.metric) {
      problems.push(`${where}: a selector without a metric name`);
      continue;
    }
    const m = exposed.get(s.metric);
    if (!m) {
      problems.push(`${where}: no service exposes ${s.metric}`);
      continue;
    }
    for (const label of s.labels) {
      if (label !== "__name__" && !m.labels.has(label)) {
        problems.push(`${where}: ${s.metric} has no label ${label} (it has ${[...m.labels].join(", ")})`);
      }
    }
    const fn = s.within[0];
    if (fn && COUNTER_FUNCTIONS.has(fn) && !isCounter(m)) {
      problems.push(`${where}: ${fn}() of ${s.metric}, a ${m.type} and no counter`);
    }
    if (s.within.includes("histogram_quantile") && !s.metric.endsWith("_bucket")) {
      problems.push(`${where}: histogram_quantile() over ${s.metric}, not a histogram's _bucket series`);
    }
  }
  for (const g of groupings) {
    for (const label of g.labels) {
      if (!g.metrics.some((name) => exposed.get(name)?.labels.has(label))) {
        problems.push(`${where}: groups by ${label}, a label none of ${g.metrics.join(", ")} has`);
      }
    }
  }
  return problems;
}

/** GitHub's anchor of a Markdown heading. */
const anchorOf = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, "")
    .replace(/\s/g, "-");

const anchors = new Set(
  OPERATIONS.split("\n")
    .map((l) => /^#{1,6}\s+(.*)$/.exec(l)?.[1])
    .filter((h): h is string => h !== undefined)
    .map(anchorOf),
);

/** The metric families the services define themselves: what Node's default metrics are not. */
function ownFamilies(): string[] {
  const defaults = new Registry();
  collectDefaultMetrics({ register: defaults });
  const node = new Set(defaults.getMetricsAsArray().map((m) => (m as unknown as { name: string }).name));
  return [...new Set([...exposed.values()].filter((m) => m.services.size > 0).map((m) => m.family))].filter(
    (f) => !node.has(f),
  );
}

const familyOf = (name: string) => exposed.get(name)?.family ?? name;

// ---- ops/alerts.yml --------------------------------------------------------------------------------------

interface Rule {
  alert?: string;
  record?: string;
  expr: unknown;
  for?: unknown;
  labels?: Record<string, unknown>;
  annotations?: Record<string, unknown>;
  [key: string]: unknown;
}

const alertFile = parseYaml(readFileSync(path.join(ROOT, ALERTS_FILE), "utf8"), { uniqueKeys: true }) as {
  groups: { name: string; rules: Rule[]; [key: string]: unknown }[];
};
const rules = (alertFile.groups ?? []).flatMap((g) => g.rules ?? []);

describe(ALERTS_FILE, () => {
  it("is a Prometheus rule file: named groups of rules with only the keys Prometheus reads", () => {
    expect(Object.keys(alertFile)).toEqual(["groups"]);
    const names = alertFile.groups.map((g) => g.name);
    expect(new Set(names).size, "group names must be unique").toBe(names.length);
    for (const g of alertFile.groups) {
      expect(
        Object.keys(g).every((k) => ["name", "interval", "limit", "rules"].includes(k)),
        g.name,
      ).toBe(true);
      expect(g.rules.length, `${g.name} has no rules`).toBeGreaterThan(0);
    }
    for (const r of rules) {
      const unknown = Object.keys(r).filter(
        (k) => !["alert", "expr", "for", "keep_firing_for", "labels", "annotations"].includes(k),
      );
      expect(unknown, `${r.alert}: keys Prometheus rejects`).toEqual([]);
    }
  });

  it("gives every alert a name, an expression, a duration, a severity, a summary and a runbook", () => {
    const names = rules.map((r) => r.alert);
    expect(new Set(names).size, "alert names must be unique").toBe(names.length);
    for (const r of rules) {
      const at = `alert ${r.alert}`;
      expect(r.alert, at).toMatch(/^[A-Z][A-Za-z0-9]+$/);
      expect(typeof r.expr === "string" && r.expr.trim() !== "", `${at}: expr`).toBe(true);
      expect(String(r.for), `${at}: for`).toMatch(DURATION);
      expect(["critical", "warning"], `${at}: labels.severity`).toContain(r.labels?.severity);
      expect(String(r.annotations?.summary ?? ""), `${at}: annotations.summary`).not.toBe("");
      expect(
        String(r.annotations?.description ?? "").length,
        `${at}: annotations.description`,
      ).toBeGreaterThan(40);
      expect(r.annotations?.runbook, `${at}: annotations.runbook`).toBe(
        `docs/operations.md#${anchorOf(r.alert ?? "")}`,
      );
      expect(
        anchors.has(anchorOf(r.alert ?? "")),
        `${at}: docs/operations.md has no section ${r.alert}`,
      ).toBe(true);
    }
  });

  it("queries only series and labels the services expose, in PromQL that parses", () => {
    const problems = rules.flatMap((r) => problemsOf(`alert ${r.alert}`, String(r.expr)));
    expect(problems).toEqual([]);
  });

  it("and docs/operations.md says what to do for each alert and no other", () => {
    const section = OPERATIONS.split(/^### Alerts$/m)[1]?.split(/^##\s/m)[0] ?? "";
    const documented = [...section.matchAll(/^####\s+(\w+)\s*$/gm)].map((m) => m[1]);
    expect(documented.sort()).toEqual(rules.map((r) => r.alert).sort());
  });
});

// ---- ops/grafana-dashboard.json ---------------------------------------------------------------------------

interface Target {
  expr?: string;
  refId?: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type?: string; uid?: string };
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: Target[];
  panels?: Panel[];
}
interface Variable {
  name: string;
  type: string;
  query: string | { query: string };
  datasource?: { type?: string; uid?: string };
}

const dashboard = JSON.parse(readFileSync(path.join(ROOT, DASHBOARD_FILE), "utf8")) as {
  title: string;
  uid: string;
  schemaVersion: number;
  templating: { list: Variable[] };
  panels: Panel[];
};
const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
const graphs = panels.filter((p) => p.type !== "row");
const queryVariables = dashboard.templating.list.filter((v) => v.type === "query");

/** A Grafana query as Prometheus receives it: Grafana's interval variables replaced by a duration. */
const asPromQL = (expr: string) => expr.replaceAll(/\$__(rate_interval|interval|range)\b/g, "5m");

describe(DASHBOARD_FILE, () => {
  it("is a dashboard Grafana imports, asking which Prometheus to use", () => {
    expect(dashboard.title).toBeTruthy();
    expect(dashboard.uid).toMatch(/^[\w-]{1,40}$/);
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    const source = dashboard.templating.list.find((v) => v.type === "datasource");
    expect(source).toMatchObject({ name: "datasource", query: "prometheus" });
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size, "panel ids must be unique").toBe(ids.length);
    for (const p of panels) {
      expect(p.gridPos.x + p.gridPos.w, `panel "${p.title}" is wider than the grid`).toBeLessThanOrEqual(24);
    }
    // Grafana's reference to the `datasource` variable: each panel uses the Prometheus picked at import
    const PICKED = { type: "prometheus", uid: ["$", "{datasource}"].join("") };
    for (const p of graphs) {
      expect(p.datasource, `panel "${p.title}"`).toEqual(PICKED);
      expect(p.targets?.length, `panel "${p.title}" has no query`).toBeGreaterThan(0);
      for (const t of p.targets ?? []) expect(t.datasource, `panel "${p.title}" ${t.refId}`).toEqual(PICKED);
    }
    for (const v of queryVariables) expect(v.datasource, `variable ${v.name}`).toEqual(PICKED);
  });

  it("queries only series and labels the services expose, in PromQL that parses", () => {
    const problems = graphs.flatMap((p) =>
      (p.targets ?? []).flatMap((t) => problemsOf(`panel "${p.title}" ${t.refId}`, asPromQL(t.expr ?? ""))),
    );
    for (const v of queryVariables) {
      const query = typeof v.query === "string" ? v.query : v.query.query;
      const call = /^label_values\((?:(.+),\s*)?(\w+)\)$/.exec(query);
      if (!call) {
        problems.push(`variable ${v.name}: not label_values(…): ${query}`);
        continue;
      }
      const [, selector, label] = call;
      if (selector) {
        problems.push(...problemsOf(`variable ${v.name}`, selector));
        const metric = analysePromQL(selector).selections[0]?.metric;
        if (metric && !exposed.get(metric)?.labels.has(label ?? "")) {
          problems.push(`variable ${v.name}: ${metric} has no label ${label}`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it("shows every metric the services define, and the alerts watch each area", () => {
    const shown = new Set(
      graphs.flatMap((p) =>
        (p.targets ?? []).flatMap((t) =>
          analysePromQL(asPromQL(t.expr ?? "")).selections.map((s) => familyOf(s.metric ?? "")),
        ),
      ),
    );
    const own = ownFamilies();
    expect(own.length).toBeGreaterThan(5);
    expect(own.filter((f) => !shown.has(f))).toEqual([]);

    const watched = new Set(
      rules.flatMap((r) => analysePromQL(String(r.expr)).selections.map((s) => familyOf(s.metric ?? ""))),
    );
    // for the dashboard only: no volume of chat is wrong in itself, a slow provider shows as retries, legacy
    // calls are the cut-over's progress (followed against the compatibility's own end date), and XEP-0363
    // refusals and XEP-0357 registrations refused are clients' mistakes (a server failure is a 5xx: alerted)
    const unwatched = own.filter((f) => !watched.has(f));
    expect(unwatched.sort()).toEqual([
      "buddies_messages_total",
      "legacy_calls_total",
      "push_send_duration_seconds",
      "xep0357_registrations_total",
      "xmpp_upload_bytes_total",
      "xmpp_uploads_total",
    ]);
  });
});
