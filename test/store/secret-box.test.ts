import { describe, expect, it } from "vitest";
import { generateSecret } from "../../src/http/signing.ts";
import {
  formatEncryptionKey,
  newEncryptionKey,
  parseEncryptionKeys,
  SecretBox,
  SecretOpenError,
} from "../../src/store/secret-box.ts";

describe("SecretBox (AES-256-GCM at rest)", () => {
  const k1 = newEncryptionKey("k1");
  const k2 = newEncryptionKey("k2");

  it("seals under the first key with a fresh IV each time, and opens what it sealed", () => {
    const box = new SecretBox([k1, k2]);
    const secret = generateSecret();
    const a = box.seal(secret);
    const b = box.seal(secret);
    expect(a).toMatch(/^enc:v1:k1:[A-Za-z0-9_-]{16}:[A-Za-z0-9_-]{22}:[A-Za-z0-9_-]+$/);
    expect(a).not.toBe(b);
    expect(box.open(a)).toBe(secret);
    expect(box.open(b)).toBe(secret);
    expect(box.isCurrent(a)).toBe(true);
    expect(SecretBox.kidOf(a)).toBe("k1");
  });

  it("opens under any key of the ring, and reseals only what is not under the first", () => {
    const secret = generateSecret();
    const old = new SecretBox([k2]).seal(secret);
    const box = new SecretBox([k1, k2]);
    expect(box.open(old)).toBe(secret);
    expect(box.isCurrent(old)).toBe(false);
    const resealed = box.reseal(old);
    expect(SecretBox.kidOf(resealed)).toBe("k1");
    expect(box.open(resealed)).toBe(secret);
    expect(box.reseal(resealed)).toBe(resealed);
    // A secret stored before encryption opens as itself and is sealed by reseal.
    expect(box.open(secret)).toBe(secret);
    expect(box.open(box.reseal(secret))).toBe(secret);
  });

  it("refuses a value under a key id it does not hold, a different key under the same id, and an altered value", () => {
    const sealed = new SecretBox([k2]).seal(generateSecret());
    expect(() => new SecretBox([k1]).open(sealed)).toThrow(
      /key id "k2", which HERALD_ENCRYPTION_KEY does not hold/,
    );
    expect(() => new SecretBox([newEncryptionKey("k2")]).open(sealed)).toThrow(SecretOpenError);
    const parts = sealed.split(":");
    const ct = Buffer.from(parts[5]!, "base64url");
    ct[0] = (ct[0] ?? 0) ^ 1;
    parts[5] = ct.toString("base64url");
    expect(() => new SecretBox([k2]).open(parts.join(":"))).toThrow(/does not authenticate/);
    // The key id is authenticated: the same bytes relabelled under another id of the ring fail.
    const relabelled = sealed.replace("enc:v1:k2:", "enc:v1:k1:");
    expect(() => new SecretBox([k1, { kid: "k1x", key: k2.key }]).open(relabelled)).toThrow(SecretOpenError);
    expect(() => new SecretBox([k1]).open("enc:v1:k1:short")).toThrow(/enc:v1:<kid>:<iv>:<tag>:<ct>/);
  });

  it("reads back the keys it formats", () => {
    const parsed = parseEncryptionKeys(`${formatEncryptionKey(k1)},${formatEncryptionKey(k2)}`);
    expect(
      parsed.ok && parsed.keys.map((k) => [k.kid, k.key.equals(k1.kid === k.kid ? k1.key : k2.key)]),
    ).toEqual([
      ["k1", true],
      ["k2", true],
    ]);
  });
});
