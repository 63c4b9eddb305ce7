import { BlockList, isIP } from "node:net";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isPrivateAddress, MAX_URL_LENGTH, validateTargetUrl } from "../../src/http/ssrf.ts";

describe("isPrivateAddress: IPv4", () => {
  it.each([
    "0.0.0.0",
    "0.255.255.255",
    "10.0.0.1",
    "10.255.255.255",
    "100.64.0.1",
    "100.127.255.255",
    "127.0.0.1",
    "127.1.2.3",
    "169.254.169.254",
    "172.16.0.1",
    "172.31.255.255",
    "192.0.0.1",
    "192.168.1.1",
    "198.18.0.1",
    "198.19.255.255",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
  ])("%s is private", (ip) => {
    expect(isPrivateAddress(ip)).toBe(true);
  });

  it.each([
    "1.1.1.1",
    "8.8.8.8",
    "9.255.255.255",
    "11.0.0.0",
    "100.63.255.255",
    "100.128.0.0",
    "126.255.255.255",
    "128.0.0.0",
    "169.253.255.255",
    "169.255.0.0",
    "172.15.255.255",
    "172.32.0.0",
    "192.0.1.0",
    "192.167.255.255",
    "192.169.0.0",
    "198.17.255.255",
    "198.20.0.0",
    "223.255.255.255",
    "93.184.216.34",
  ])("%s is public", (ip) => {
    expect(isPrivateAddress(ip)).toBe(false);
  });

  it("agrees with a node:net BlockList of the same ranges on any address (property)", () => {
    const list = new BlockList();
    for (const [net, bits] of [
      ["0.0.0.0", 8],
      ["10.0.0.0", 8],
      ["100.64.0.0", 10],
      ["127.0.0.0", 8],
      ["169.254.0.0", 16],
      ["172.16.0.0", 12],
      ["192.0.0.0", 24],
      ["192.168.0.0", 16],
      ["198.18.0.0", 15],
      ["224.0.0.0", 4],
      ["240.0.0.0", 4],
    ] as const) {
      list.addSubnet(net, bits, "ipv4");
    }
    fc.assert(
      fc.property(fc.ipV4(), (ip) => isPrivateAddress(ip) === list.check(ip, "ipv4")),
      { numRuns: 5000 },
    );
  });
});

describe("isPrivateAddress: IPv6", () => {
  it.each([
    "::",
    "::1",
    "0:0:0:0:0:0:0:1",
    "[::1]",
    "fc00::1",
    "fd12:3456:789a::1",
    "fe80::1",
    "fe80::1%eth0",
    "febf::1",
    "fec0::1",
    "ff02::1",
    "ff0e::1",
    "::ffff:127.0.0.1",
    "::ffff:7f00:1",
    "::ffff:10.1.2.3",
    "::ffff:169.254.169.254",
    "::ffff:0:10.0.0.1",
    "::127.0.0.1",
    "64:ff9b::127.0.0.1",
    "64:ff9b::a00:1",
    "64:ff9b::192.168.0.1",
    "64:ff9b:1::8.8.8.8",
    "100::1",
    "2002:7f00:1::",
    "2002:c0a8:101::1",
  ])("%s is private", (ip) => {
    expect(isPrivateAddress(ip)).toBe(true);
  });

  it.each([
    "2001:4860:4860::8888",
    "2606:4700:4700::1111",
    "2a00:1450:4001:81c::200e",
    "::ffff:8.8.8.8",
    "::ffff:808:808",
    "64:ff9b::8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
    "fbff::1",
    "fe00::1",
  ])("%s is public", (ip) => {
    expect(isPrivateAddress(ip)).toBe(false);
  });

  it("judges IPv4-mapped and NAT64 addresses by the IPv4 they embed (property)", () => {
    fc.assert(
      fc.property(fc.ipV4(), (v4) => {
        const expected = isPrivateAddress(v4);
        return (
          isPrivateAddress(`::ffff:${v4}`) === expected &&
          isPrivateAddress(`64:ff9b::${v4}`) === expected &&
          isPrivateAddress(`0:0:0:0:0:ffff:${v4}`) === expected
        );
      }),
      { numRuns: 2000 },
    );
  });

  it("gives the same answer for every spelling of an address (property)", () => {
    fc.assert(
      fc.property(fc.ipV6(), (ip) => {
        // The WHATWG URL parser rewrites an address to its canonical compressed hex form.
        const canonical = new URL(`http://[${ip}]/`).hostname.slice(1, -1);
        return isPrivateAddress(ip) === isPrivateAddress(canonical);
      }),
      { numRuns: 3000 },
    );
  });
});

describe("isPrivateAddress: not an address", () => {
  it.each([
    "",
    "localhost",
    "example.com",
    "1.2.3",
    "1.2.3.4.5",
    "256.1.1.1",
    "01.2.3.4",
    "0x7f.0.0.1",
    ":::1",
    "1::2::3",
    "g::1",
    "::ffff:1.2.3.256",
  ])("%j fails closed", (text) => {
    expect(isPrivateAddress(text)).toBe(true);
  });

  it("gives a public verdict only to what node:net accepts as an IP literal (property)", () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6(), fc.ipV4Extended(), fc.string({ maxLength: 45 })), (text) => {
        return isPrivateAddress(text) || isIP(text) !== 0;
      }),
      { numRuns: 3000 },
    );
  });
});

describe("validateTargetUrl", () => {
  const strict = { allowPrivate: false };
  const lax = { allowPrivate: true };

  it.each([
    "https://example.com/hook",
    "http://example.com:8080/a/b?c=d",
    "https://hooks.example.co.uk/x#frag",
    "https://8.8.8.8/hook",
    "https://[2001:4860:4860::8888]/hook",
  ])("accepts %s", (raw) => {
    const result = validateTargetUrl(raw, strict);
    expect(result.ok).toBe(true);
    if (result.ok) expect(result.url.href).toBe(new URL(raw).href);
  });

  it.each([
    ["", "url is required"],
    ["   ", "url is required"],
    ["not a url", "url must be an absolute http or https URL"],
    ["/relative/path", "url must be an absolute http or https URL"],
    ["ftp://example.com/x", "url must use http or https"],
    ["javascript:alert(1)", "url must use http or https"],
    ["file:///etc/passwd", "url must use http or https"],
    ["https://user@example.com/", "url must not contain credentials"],
    ["https://user:pass@example.com/", "url must not contain credentials"],
    ["https://:pass@example.com/", "url must not contain credentials"],
  ])("refuses %j as invalid: %s", (raw, message) => {
    for (const opts of [strict, lax]) {
      expect(validateTargetUrl(raw, opts)).toEqual({ ok: false, reason: "invalid", message });
    }
  });

  it("refuses a URL longer than the limit", () => {
    const raw = `https://example.com/${"a".repeat(MAX_URL_LENGTH)}`;
    expect(validateTargetUrl(raw, lax)).toEqual({
      ok: false,
      reason: "invalid",
      message: `url must be at most ${MAX_URL_LENGTH} characters`,
    });
  });

  it.each([
    "http://localhost/hook",
    "http://LOCALHOST:8080/hook",
    "http://localhost./hook",
    "http://api.localhost/hook",
    "http://127.0.0.1/hook",
    "http://127.1/hook",
    "http://2130706433/hook",
    "http://0x7f.0.0.1/hook",
    "http://0/hook",
    "http://10.0.0.5/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::ffff:a00:1]/hook",
    "http://[fd00::1]/hook",
    "http://[fe80::1]/hook",
    "http://[64:ff9b::10.0.0.1]/hook",
  ])("refuses %s unless private targets are allowed", (raw) => {
    const result = validateTargetUrl(raw, strict);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.reason).toBe("private");
      expect(result.message).toMatch(/^url must not point to /);
    }
    expect(validateTargetUrl(raw, lax).ok).toBe(true);
  });

  it("names the offending address", () => {
    expect(validateTargetUrl("http://2130706433/", strict)).toEqual({
      ok: false,
      reason: "private",
      message: "url must not point to a private, loopback or reserved address (127.0.0.1)",
    });
    expect(validateTargetUrl("http://api.localhost/", strict)).toEqual({
      ok: false,
      reason: "private",
      message: "url must not point to localhost (api.localhost)",
    });
  });

  it("leaves host names to the connect-time check", () => {
    expect(validateTargetUrl("http://internal-service/hook", strict).ok).toBe(true);
    expect(validateTargetUrl("http://localhost.example.com/hook", strict).ok).toBe(true);
  });
});
