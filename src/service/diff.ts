/** The fields that differ between two views of a record, as `{ before, after }` objects for the audit log. */
export function diff<T extends object>(
  before: T,
  after: T,
  fields: ReadonlyArray<keyof T>,
): { before: Partial<T>; after: Partial<T> } | null {
  const b: Partial<T> = {};
  const a: Partial<T> = {};
  let changed = false;
  for (const f of fields) {
    if (JSON.stringify(before[f]) !== JSON.stringify(after[f])) {
      b[f] = before[f];
      a[f] = after[f];
      changed = true;
    }
  }
  return changed ? { before: b, after: a } : null;
}
