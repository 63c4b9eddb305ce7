/**
 * The embedded store's data directory is private to the user Herald runs as: the directory and every
 * directory under it 0700, every file 0600. It holds the database (whose WAL and heap files carry every
 * event payload), the admin token and the encryption key.
 *
 * PGlite cannot be trusted to create files that way on its own: its file system (Emscripten's NODEFS)
 * creates a file and then chmods it to the mode the WebAssembly program asked for, which bypasses the
 * process umask. initdb's files come out 0666 and the relation cache's init files 0644; files PostgreSQL
 * creates later (relations, WAL segments) it asks 0600 for. So the store tightens the whole tree when it
 * opens, after PGlite has started, and again when it closes.
 */
import fs from "node:fs";
import path from "node:path";
import {
  type EncryptionKey,
  formatEncryptionKey,
  newEncryptionKey,
  parseEncryptionKeys,
} from "./secret-box.ts";

export const DIR_MODE = 0o700;
export const FILE_MODE = 0o600;
/** Entries looked at by one tightening walk at most: a data directory holds about a thousand. */
const WALK_LIMIT = 1_000_000;

/** Creates the directory (and parents) 0700 if missing; an existing one is left to tightenTree. */
export function makePrivateDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: DIR_MODE });
}

/**
 * Sets 0700 on `root` and every directory below it and 0600 on every file; symbolic links are not
 * followed. Returns how many entries had a wider mode. An entry that vanishes during the walk (PostgreSQL
 * renames and removes WAL segments) is skipped.
 */
export function tightenTree(root: string): number {
  let changed = 0;
  let seen = 0;
  const visit = (p: string, isRoot: boolean): void => {
    if (++seen > WALK_LIMIT) throw new Error(`more than ${WALK_LIMIT} entries under ${root}`);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch (err) {
      if (!isRoot && (err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw err;
    }
    if (st.isSymbolicLink()) return;
    const want = st.isDirectory() ? DIR_MODE : FILE_MODE;
    if ((st.mode & 0o777) !== want) {
      try {
        fs.chmodSync(p, want);
        changed++;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      }
    }
    if (!st.isDirectory()) return;
    let names: string[];
    try {
      names = fs.readdirSync(p);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw err;
    }
    for (const name of names) visit(path.join(p, name), false);
  };
  visit(root, true);
  return changed;
}

/** Writes a new file 0600, failing if it exists (flag wx), so that two writers cannot both win. */
export function writePrivateFile(file: string, content: string): void {
  fs.writeFileSync(file, content, { mode: FILE_MODE, flag: "wx" });
}

export const KEY_FILE = "encryption-key";

/**
 * The embedded store's own encryption key, `<dataDir>/encryption-key` (`kid:base64key`, 0600): read, or
 * generated at the first start. Used when HERALD_ENCRYPTION_KEY is unset; when it is set, the file's key
 * still opens what it sealed until the start-up pass has sealed it again under the variable's first key.
 */
export function readKeyFile(dataDir: string): EncryptionKey[] | null {
  const file = path.join(dataDir, KEY_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8").trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
  const parsed = parseEncryptionKeys(text, file);
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.keys;
}

export function readOrCreateKeyFile(dataDir: string): EncryptionKey[] {
  const existing = readKeyFile(dataDir);
  if (existing) return existing;
  makePrivateDir(dataDir);
  const key = newEncryptionKey("local");
  try {
    writePrivateFile(path.join(dataDir, KEY_FILE), `${formatEncryptionKey(key)}\n`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    const raced = readKeyFile(dataDir);
    if (raced) return raced;
    throw err;
  }
  return [key];
}

/**
 * The key ring of this process: HERALD_ENCRYPTION_KEY's keys when set, else (embedded store) the data
 * directory's own key, generated at the first start. With both, the file's key comes last: it opens what
 * it sealed until the start-up pass has sealed that again under the variable's first key.
 * `dataDir` null: no data directory (PostgreSQL, or a store handed in by a test).
 */
export function resolveEncryptionKeys(
  fromEnv: readonly EncryptionKey[] | null,
  dataDir: string | null,
): EncryptionKey[] {
  if (fromEnv === null) {
    if (dataDir === null) throw new Error("HERALD_ENCRYPTION_KEY is required without a data directory");
    return readOrCreateKeyFile(dataDir);
  }
  const keys = [...fromEnv];
  for (const k of (dataDir === null ? null : readKeyFile(dataDir)) ?? []) {
    const same = keys.find((e) => e.kid === k.kid);
    if (!same) keys.push(k);
    else if (!same.key.equals(k.key)) {
      throw new Error(
        `HERALD_ENCRYPTION_KEY's key id "${k.kid}" names a different key than ${path.join(dataDir ?? "", KEY_FILE)}: give the variable's key another id`,
      );
    }
  }
  return keys;
}
