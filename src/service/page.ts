/**
 * Cursor paging: callers fetch `limit + 1` rows; the extra row only tells whether another page exists,
 * and the cursor is the last shown row's key.
 */
export function toPage<R, C>(
  rows: readonly R[],
  limit: number,
  cursorOf: (row: R) => C,
): { items: R[]; next_cursor: C | null } {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return { items, next_cursor: rows.length > limit && last !== undefined ? cursorOf(last) : null };
}
