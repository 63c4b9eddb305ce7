/** Prints rows as an aligned text table (or, with `vertical`, one "key: value" line per field). */
export function printTable(
  rows: Array<Record<string, unknown>>,
  vertical = false,
  out = process.stdout,
): void {
  if (rows.length === 0) {
    out.write("(none)\n");
    return;
  }
  const show = (v: unknown) =>
    v === null || v === undefined ? "-" : typeof v === "object" ? JSON.stringify(v) : String(v);
  if (vertical) {
    for (const row of rows) {
      const width = Math.max(...Object.keys(row).map((k) => k.length));
      for (const [k, v] of Object.entries(row)) out.write(`${k.padEnd(width)}  ${show(v)}\n`);
    }
    return;
  }
  const cols = Object.keys(rows[0]!);
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => show(r[c]).length)));
  out.write(`${cols.map((c, i) => c.toUpperCase().padEnd(widths[i]!)).join("  ")}\n`);
  for (const r of rows) out.write(`${cols.map((c, i) => show(r[c]).padEnd(widths[i]!)).join("  ")}\n`);
}
