import { parser } from "@prometheus-io/lezer-promql";

/**
 * What a PromQL expression selects, read with Prometheus' own grammar (@prometheus-io/lezer-promql, the
 * parser of Prometheus' web UI): its syntax errors, the series it selects with their label matchers, the
 * labels it groups by, and the functions it applies to each selection.
 */

export interface Selection {
  /** the metric name, or undefined for a selector by labels only */
  metric: string | undefined;
  /** the label names its matchers use */
  labels: string[];
  /** the functions around it, innermost first (`rate`, `sum`…, `histogram_quantile`) */
  within: string[];
}

export interface Grouping {
  /** the labels of a `by (…)`, `on (…)`, `ignoring (…)` or `group_left (…)` */
  labels: string[];
  /** the metrics under the aggregation or on either side of the operator */
  metrics: string[];
}

export interface Analysis {
  errors: string[];
  selections: Selection[];
  groupings: Grouping[];
}

interface Node {
  name: string;
  from: number;
  to: number;
  isError: boolean;
  children: Node[];
}

function tree(expr: string): Node {
  const root: Node = { name: "root", from: 0, to: expr.length, isError: false, children: [] };
  const stack = [root];
  parser.parse(expr).iterate({
    enter(n) {
      const node: Node = { name: n.type.name, from: n.from, to: n.to, isError: n.type.isError, children: [] };
      stack.at(-1)?.children.push(node);
      stack.push(node);
    },
    leave() {
      stack.pop();
    },
  });
  return root;
}

/** A quoted label name (`{"service"="auth"}`) as its bare name; single quotes and backticks escape nothing we use. */
const unquote = (s: string) =>
  s.startsWith('"') ? (JSON.parse(s) as string) : s.replace(/^['`](.*)['`]$/s, "$1");

export function analysePromQL(expr: string): Analysis {
  const root = tree(expr);
  const text = (n: Node) => expr.slice(n.from, n.to);
  const errors: string[] = [];
  const selections: Selection[] = [];
  const groupings: Grouping[] = [];

  const metricsUnder = (n: Node): string[] => {
    const found: string[] = [];
    const visit = (m: Node) => {
      if (m.name === "VectorSelector") {
        const name = m.children.find((c) => c.name === "Identifier");
        if (name) found.push(text(name));
      }
      for (const c of m.children) visit(c);
    };
    visit(n);
    return found;
  };
  const labelsOf = (n: Node) =>
    n.children
      .filter((c) => c.name === "LabelName" || c.name === "QuotedLabelName")
      .map((c) => unquote(text(c)));

  const visit = (n: Node, within: string[]) => {
    if (n.isError) {
      errors.push(`syntax error at ${n.from}: …${expr.slice(Math.max(0, n.from - 30), n.from + 10)}…`);
    }
    let inner = within;
    if (n.name === "FunctionCall") {
      const name = n.children.find((c) => c.name === "FunctionIdentifier");
      if (name) inner = [text(name), ...within];
    } else if (n.name === "AggregateExpr") {
      const op = n.children.find((c) => c.name === "AggregateOp");
      if (op) inner = [text(op), ...within];
      const modifier = n.children.find((c) => c.name === "AggregateModifier");
      const by = modifier?.children.some((c) => c.name === "By");
      const labels = modifier?.children.find((c) => c.name === "GroupingLabels");
      if (by && labels) groupings.push({ labels: labelsOf(labels), metrics: metricsUnder(n) });
    } else if (n.name === "MatchingModifierClause") {
      for (const labels of n.children.filter((c) => c.name === "GroupingLabels")) {
        groupings.push({ labels: labelsOf(labels), metrics: [] }); // metrics: filled by the BinaryExpr below
      }
    } else if (n.name === "BinaryExpr") {
      const before = groupings.length;
      for (const c of n.children) visit(c, inner);
      for (const g of groupings.slice(before)) if (g.metrics.length === 0) g.metrics = metricsUnder(n);
      return;
    } else if (n.name === "VectorSelector") {
      const name = n.children.find((c) => c.name === "Identifier");
      const matchers = n.children.find((c) => c.name === "LabelMatchers");
      const labels = (matchers?.children ?? []).flatMap((m) => {
        if (m.name === "UnquotedLabelMatcher") return labelsOf(m);
        if (m.name === "QuotedLabelMatcher") return labelsOf(m);
        return [];
      });
      selections.push({ metric: name ? text(name) : undefined, labels, within });
    }
    for (const c of n.children) visit(c, inner);
  };
  visit(root, []);
  return { errors, selections, groupings };
}
