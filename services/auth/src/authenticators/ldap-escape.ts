/**
 * A user part put into the strings the directory parses: a DN's attribute value (RFC 4514 section 2.4) and a
 * filter's assertion value (RFC 4515 section 3). Escaped, `*`, `)(`, `,` or `\` in a JID's user part (all
 * allowed by nodeprep) match that very character, never a wildcard, another filter or another RDN.
 *
 * Written here rather than taken from ldapts: its filter escaping moved from an instance method to a static
 * `Filter.escape` in 8.2 (9.0 dropped the old one), and it has none for DN values; a dozen lines that follow
 * the RFCs work with every ldapts version.
 */

/** RFC 4514: `"+,;<>\=` by a backslash; a leading space or `#`, a trailing space; NUL and controls as hex pairs. */
export function escapeDnValue(value: string): string {
  const chars = [...value];
  return chars
    .map((c, i) => {
      const code = c.codePointAt(0) ?? 0;
      if (code < 0x20 || code === 0x7f) return `\\${code.toString(16).padStart(2, "0")}`;
      if ('"+,;<>\\='.includes(c)) return `\\${c}`;
      if (i === 0 && (c === " " || c === "#")) return `\\${c}`;
      if (i === chars.length - 1 && c === " ") return `\\${c}`;
      return c;
    })
    .join("");
}

/**
 * RFC 4515: `*`, `(`, `)`, `\` and NUL as `\2a`, `\28`, `\29`, `\5c`, `\00`. Other characters, UTF-8 included,
 * stay as they are (valid in a string filter, and ldapts reads a `\xx` pair as one Latin-1 character, so
 * escaping a multi-byte character byte by byte would change it).
 */
export function escapeFilterValue(value: string): string {
  return value.replace(/[*()\\\0]/g, (c) => `\\${(c.codePointAt(0) ?? 0).toString(16).padStart(2, "0")}`);
}

/** `template` with each `{name}` replaced by its value, already escaped for where it goes. */
export function fillTemplate(template: string, values: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (whole, name: string) => values[name] ?? whole);
}
