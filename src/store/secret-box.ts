/**
 * Signing secrets at rest: AES-256-GCM from node:crypto, under a key ring whose first key encrypts and
 * whose every key decrypts. A stored value is
 *
 *     enc:v1:<kid>:<iv>:<tag>:<ciphertext>      (iv 12 bytes, tag 16 bytes, each base64url without padding)
 *
 * in the same text columns that once held the secret itself (`subscriptions.secret`, `previous_secret`).
 * The header `enc:v1:<kid>` is authenticated as additional data, so a value moved under another key id
 * fails to open instead of decrypting under the wrong key. A value without the `enc:` prefix is a secret
 * stored before encryption: it opens as itself, and the start-up pass (src/store/reseal.ts) seals it.
 *
 * This lives in src/store, not src/domain: it holds key material and is how the store keeps a column, not
 * a rule of the product. The service seals what it writes, the dispatcher opens what it signs with.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";

export interface EncryptionKey {
  /** Names the key in every value it sealed: 1-32 of A-Z a-z 0-9 _ -. */
  kid: string;
  /** 32 bytes. */
  key: Buffer;
}

export const SEALED_PREFIX = "enc:v1:";
const KID_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Opened secrets kept per process: one per subscription (two during a rotation) is the working set. */
const OPEN_CACHE_LIMIT = 20_000;

/** A stored secret that cannot be opened: its key is not in the ring, or the value was altered. */
export class SecretOpenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SecretOpenError";
  }
}

/**
 * Parses `kid:base64key[,kid2:base64key2…]` (HERALD_ENCRYPTION_KEY). Each key is 32 bytes in standard or
 * URL-safe base64; key ids are unique. Messages name the entry by position, never its key.
 */
export function parseEncryptionKeys(
  value: string,
  name = "HERALD_ENCRYPTION_KEY",
): { ok: true; keys: EncryptionKey[] } | { ok: false; message: string } {
  const keys: EncryptionKey[] = [];
  const entries = value.split(",").map((e) => e.trim());
  for (const [i, entry] of entries.entries()) {
    const at = `${name} entry ${i + 1}`;
    const colon = entry.indexOf(":");
    if (colon < 0) {
      return { ok: false, message: `${at} must be <key id>:<base64 of 32 bytes>; got no ":"` };
    }
    const kid = entry.slice(0, colon);
    const encoded = entry.slice(colon + 1);
    if (!KID_PATTERN.test(kid)) {
      return {
        ok: false,
        message: `${at}: the key id must be 1-32 of A-Z a-z 0-9 _ -; got "${kid.slice(0, 40)}"`,
      };
    }
    if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(encoded)) {
      return { ok: false, message: `${at} (key id "${kid}"): the key is not base64` };
    }
    const key = Buffer.from(encoded, "base64");
    if (key.length !== KEY_BYTES) {
      return {
        ok: false,
        message: `${at} (key id "${kid}"): the key must be ${KEY_BYTES} bytes (44 base64 characters, e.g. from \`openssl rand -base64 32\`); got ${key.length} bytes`,
      };
    }
    if (keys.some((k) => k.kid === kid)) {
      return { ok: false, message: `${at}: the key id "${kid}" appears twice` };
    }
    keys.push({ kid, key });
  }
  return { ok: true, keys };
}

/** `kid:base64key`, the form parseEncryptionKeys reads. */
export function formatEncryptionKey(k: EncryptionKey): string {
  return `${k.kid}:${k.key.toString("base64")}`;
}

/** A new random key under this id. */
export function newEncryptionKey(kid: string): EncryptionKey {
  return { kid, key: randomBytes(KEY_BYTES) };
}

export function isSealed(stored: string): boolean {
  return stored.startsWith("enc:");
}

const b64 = (b: Buffer) => b.toString("base64url");

export class SecretBox {
  private readonly byKid: ReadonlyMap<string, Buffer>;
  private readonly primary: EncryptionKey;
  /** Opened secrets keyed by their stored value: a value never changes meaning, so no invalidation. */
  private readonly opened = new Map<string, string>();

  /** `keys[0]` seals; every key opens. */
  constructor(keys: readonly EncryptionKey[]) {
    const first = keys[0];
    if (!first) throw new Error("the key ring needs at least one key");
    this.primary = first;
    this.byKid = new Map(keys.map((k) => [k.kid, k.key]));
  }

  get primaryKid(): string {
    return this.primary.kid;
  }

  get kids(): string[] {
    return [...this.byKid.keys()];
  }

  /** The stored form of a secret, under the first key, with a fresh random IV. */
  seal(plaintext: string): string {
    const header = `${SEALED_PREFIX}${this.primary.kid}`;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", this.primary.key, iv);
    cipher.setAAD(Buffer.from(header, "utf8"));
    const ct = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
    return `${header}:${b64(iv)}:${b64(cipher.getAuthTag())}:${b64(ct)}`;
  }

  /**
   * The secret a stored value holds. A value stored before encryption (no `enc:` prefix) is the secret
   * itself. Results are cached by stored value, so the dispatcher decrypts once per subscription secret,
   * not once per delivery.
   */
  open(stored: string): string {
    if (!isSealed(stored)) return stored;
    const hit = this.opened.get(stored);
    if (hit !== undefined) return hit;
    const plaintext = this.decrypt(stored);
    if (this.opened.size >= OPEN_CACHE_LIMIT) {
      // Oldest first (insertion order): a subscription still in use is opened again on its next delivery.
      const oldest = this.opened.keys().next().value;
      if (oldest !== undefined) this.opened.delete(oldest);
    }
    this.opened.set(stored, plaintext);
    return plaintext;
  }

  /** True when `stored` is sealed under the first key: nothing for the start-up pass to do. */
  isCurrent(stored: string): boolean {
    return stored.startsWith(`${SEALED_PREFIX}${this.primary.kid}:`);
  }

  /** `stored` sealed under the first key: unchanged when it already is, else opened and sealed again. */
  reseal(stored: string): string {
    return this.isCurrent(stored) ? stored : this.seal(this.open(stored));
  }

  /** The key id a stored value names, or null for a value stored before encryption. */
  static kidOf(stored: string): string | null {
    if (!stored.startsWith(SEALED_PREFIX)) return null;
    return stored.slice(SEALED_PREFIX.length).split(":", 1)[0] ?? null;
  }

  private decrypt(stored: string): string {
    const parts = stored.split(":");
    if (parts.length !== 6 || `${parts[0]}:${parts[1]}:` !== SEALED_PREFIX) {
      throw new SecretOpenError("a stored secret is not in the enc:v1:<kid>:<iv>:<tag>:<ct> form");
    }
    const [, , kid, iv, tag, ct] = parts as [string, string, string, string, string, string];
    const key = this.byKid.get(kid);
    if (!key) {
      throw new SecretOpenError(
        `a stored secret is sealed under key id "${kid}", which HERALD_ENCRYPTION_KEY does not hold (it has ${this.kids.map((k) => `"${k}"`).join(", ")})`,
      );
    }
    const ivBytes = Buffer.from(iv, "base64url");
    const tagBytes = Buffer.from(tag, "base64url");
    if (ivBytes.length !== IV_BYTES || tagBytes.length !== TAG_BYTES) {
      throw new SecretOpenError(`a stored secret under key id "${kid}" has a malformed IV or tag`);
    }
    try {
      const decipher = createDecipheriv("aes-256-gcm", key, ivBytes);
      decipher.setAAD(Buffer.from(`${SEALED_PREFIX}${kid}`, "utf8"));
      decipher.setAuthTag(tagBytes);
      return Buffer.concat([decipher.update(Buffer.from(ct, "base64url")), decipher.final()]).toString(
        "utf8",
      );
    } catch {
      throw new SecretOpenError(
        `a stored secret under key id "${kid}" does not authenticate: a different key under that id, or an altered value`,
      );
    }
  }
}
