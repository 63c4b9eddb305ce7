import fc from "fast-check";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import {
  buildBody,
  buildWebhookHeaders,
  generateSecret,
  isValidSecret,
  secretKey,
  sign,
} from "../../src/http/signing.ts";

const nowSeconds = () => Math.floor(Date.now() / 1000);

function verifies(secret: string, body: string, headers: Record<string, string>): boolean {
  try {
    new Webhook(secret).verify(body, headers, { jsonParse: false });
    return true;
  } catch {
    return false;
  }
}

describe("generateSecret", () => {
  it("is whsec_ followed by the base64 of 32 random bytes", () => {
    const secret = generateSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    expect(Buffer.from(secret.slice("whsec_".length), "base64")).toHaveLength(32);
    expect(isValidSecret(secret)).toBe(true);
  });

  it("differs every time", () => {
    const secrets = new Set(Array.from({ length: 50 }, () => generateSecret()));
    expect(secrets.size).toBe(50);
  });
});

describe("secretKey / isValidSecret", () => {
  it("accepts the secret with or without the whsec_ prefix", () => {
    const secret = generateSecret();
    expect(secretKey(secret).equals(secretKey(secret.slice("whsec_".length)))).toBe(true);
  });

  it.each(["", "whsec_", "whsec_not base64!", "whsec_abc", "whsec_=abc"])("refuses %j", (secret) => {
    expect(isValidSecret(secret)).toBe(false);
    expect(() => secretKey(secret)).toThrow(/whsec_/);
  });
});

describe("sign", () => {
  it("matches the Standard Webhooks reference vector", () => {
    const signature = sign({
      webhookId: "msg_p5jXN8AQM9LWM0D4loKWxJek",
      timestampSeconds: 1614265330,
      body: '{"test": 2432232314}',
      secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    });
    expect(signature).toBe("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  });

  it("agrees with the standardwebhooks library's own signer", () => {
    const secret = generateSecret();
    const at = new Date(1_700_000_000_000);
    const body = buildBody({ type: "a.b", timestamp: at, data: { x: "é ☃ 𝄞" } });
    expect(sign({ webhookId: "msg_1", timestampSeconds: at.getTime() / 1000, body, secrets: [secret] })).toBe(
      new Webhook(secret).sign("msg_1", at, body),
    );
  });

  it("signs with every secret, space separated, each once", () => {
    const [a, b] = [generateSecret(), generateSecret()];
    const input = { webhookId: "msg_1", timestampSeconds: 1_700_000_000, body: "{}" };
    const both = sign({ ...input, secrets: [a, b, a] }).split(" ");
    expect(both).toEqual([sign({ ...input, secrets: [a] }), sign({ ...input, secrets: [b] })]);
    for (const part of both) expect(part).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
  });

  it("drops fractions of a second from the timestamp", () => {
    const input = { webhookId: "msg_1", body: "{}", secrets: [generateSecret()] };
    expect(sign({ ...input, timestampSeconds: 1_700_000_000.999 })).toBe(
      sign({ ...input, timestampSeconds: 1_700_000_000 }),
    );
  });

  it("refuses an empty secret list", () => {
    expect(() => sign({ webhookId: "m", timestampSeconds: 1, body: "", secrets: [] })).toThrow(/secret/);
  });
});

describe("buildWebhookHeaders", () => {
  it("carries id, timestamp, signature, content type and user agent", () => {
    const secret = generateSecret();
    const headers = buildWebhookHeaders({
      webhookId: "msg_42",
      timestampSeconds: 1_700_000_123.4,
      body: "{}",
      secrets: [secret],
    });
    expect(headers).toEqual({
      "webhook-id": "msg_42",
      "webhook-timestamp": "1700000123",
      "webhook-signature": sign({
        webhookId: "msg_42",
        timestampSeconds: 1_700_000_123,
        body: "{}",
        secrets: [secret],
      }),
      "content-type": "application/json",
      "user-agent": "Herald-Webhooks/0.1",
    });
  });

  it("is accepted by the standardwebhooks verifier with either secret of a rotation", () => {
    const [oldSecret, newSecret, stranger] = [generateSecret(), generateSecret(), generateSecret()];
    const body = buildBody({ type: "contract.executed", timestamp: new Date(), data: { contract: "c_1" } });
    const headers = buildWebhookHeaders({
      webhookId: "msg_rot",
      timestampSeconds: nowSeconds(),
      body,
      secrets: [oldSecret, newSecret],
    });
    expect(verifies(oldSecret, body, headers)).toBe(true);
    expect(verifies(newSecret, body, headers)).toBe(true);
    expect(verifies(stranger, body, headers)).toBe(false);
    expect(new Webhook(newSecret).verify(body, headers)).toEqual(JSON.parse(body));
  });

  it("fails verification when any single byte of the body changes", () => {
    const secret = generateSecret();
    const body = buildBody({ type: "contract.executed", timestamp: new Date(), data: { amount: 1250 } });
    const headers = buildWebhookHeaders({
      webhookId: "msg_x",
      timestampSeconds: nowSeconds(),
      body,
      secrets: [secret],
    });
    expect(verifies(secret, body, headers)).toBe(true);
    for (let i = 0; i < body.length; i++) {
      const code = body.charCodeAt(i);
      const altered = `${body.slice(0, i)}${String.fromCharCode(code === 0x7a ? 0x79 : code + 1)}${body.slice(i + 1)}`;
      expect(verifies(secret, altered, headers)).toBe(false);
    }
  });

  it("fails verification when the id or the timestamp changes", () => {
    const secret = generateSecret();
    const ts = nowSeconds();
    const headers = buildWebhookHeaders({
      webhookId: "msg_a",
      timestampSeconds: ts,
      body: "{}",
      secrets: [secret],
    });
    expect(verifies(secret, "{}", { ...headers, "webhook-id": "msg_b" })).toBe(false);
    expect(verifies(secret, "{}", { ...headers, "webhook-timestamp": String(ts - 1) })).toBe(false);
  });

  it("any id, body and pair of secrets verifies (property)", () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[A-Za-z0-9_-]{1,40}$/),
        fc.string({ unit: "grapheme", maxLength: 200 }),
        fc.uint8Array({ minLength: 24, maxLength: 64 }),
        fc.uint8Array({ minLength: 24, maxLength: 64 }),
        (webhookId, body, k1, k2) => {
          const s1 = `whsec_${Buffer.from(k1).toString("base64")}`;
          const s2 = `whsec_${Buffer.from(k2).toString("base64")}`;
          const headers = buildWebhookHeaders({
            webhookId,
            timestampSeconds: nowSeconds(),
            body,
            secrets: [s1, s2],
          });
          return verifies(s1, body, headers) && verifies(s2, body, headers);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe("buildBody", () => {
  it("is the Standard Webhooks payload shape", () => {
    const body = buildBody({
      type: "contract.executed",
      timestamp: new Date("2024-05-06T07:08:09.010Z"),
      data: { contract_id: "c_1", parties: ["a", "b"] },
    });
    expect(body).toBe(
      '{"type":"contract.executed","timestamp":"2024-05-06T07:08:09.010Z","data":{"contract_id":"c_1","parties":["a","b"]}}',
    );
  });

  it("sends undefined data as null", () => {
    expect(JSON.parse(buildBody({ type: "t", timestamp: new Date(0), data: undefined }))).toEqual({
      type: "t",
      timestamp: "1970-01-01T00:00:00.000Z",
      data: null,
    });
  });
});
