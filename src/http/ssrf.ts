/**
 * SSRF guard: which addresses a webhook may never reach (unless the deployment allows private
 * targets), and the static check of a subscription URL. The sender repeats the address check on
 * every resolved address at connect time, so DNS rebinding cannot get past the URL check.
 */
import { isIP } from "node:net";

/** A parsed IPv4 address as an unsigned 32-bit number. */
function parseIPv4(text: string): number | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  let value = 0;
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return null;
    const n = Number(part);
    if (n > 255) return null;
    value = value * 256 + n;
  }
  return value;
}

/** A parsed IPv6 address as eight 16-bit groups (zone id ignored), or null. */
function parseIPv6(input: string): number[] | null {
  let text = input;
  const zone = text.indexOf("%");
  if (zone !== -1) text = text.slice(0, zone);
  if (text === "" || !/^[0-9a-fA-F:.]+$/.test(text)) return null;

  // An embedded dotted IPv4 tail stands for the last two groups.
  let tail: number[] = [];
  const lastColon = text.lastIndexOf(":");
  if (text.includes(".")) {
    const v4 = parseIPv4(text.slice(lastColon + 1));
    if (v4 === null || lastColon === -1) return null;
    tail = [Math.floor(v4 / 65536), v4 % 65536];
    // Keep a "::" right before the tail; drop a single separating ":".
    text = text.slice(0, lastColon + 1);
    if (!text.endsWith("::")) text = text.slice(0, -1);
  }

  const halves = text.split("::");
  if (halves.length > 2) return null;
  const toGroups = (s: string): number[] | null => {
    if (s === "") return [];
    const out: number[] = [];
    for (const g of s.split(":")) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      out.push(Number.parseInt(g, 16));
    }
    return out;
  };
  const head = toGroups(halves[0] ?? "");
  if (head === null) return null;
  if (halves.length === 1) {
    const groups = [...head, ...tail];
    return groups.length === 8 ? groups : null;
  }
  const rest = toGroups(halves[1] ?? "");
  if (rest === null) return null;
  const known = head.length + rest.length + tail.length;
  if (known > 7) return null;
  return [...head, ...new Array<number>(8 - known).fill(0), ...rest, ...tail];
}

/** IPv4 ranges that are not the public internet: [network, prefix length]. */
const PRIVATE_V4: ReadonlyArray<readonly [string, number]> = [
  ["0.0.0.0", 8], // "this network"
  ["10.0.0.0", 8], // private
  ["100.64.0.0", 10], // carrier-grade NAT
  ["127.0.0.0", 8], // loopback
  ["169.254.0.0", 16], // link-local (cloud metadata lives here)
  ["172.16.0.0", 12], // private
  ["192.0.0.0", 24], // IETF protocol assignments
  ["192.168.0.0", 16], // private
  ["198.18.0.0", 15], // benchmarking
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4], // reserved, includes broadcast 255.255.255.255
];

const PRIVATE_V4_MASKS = PRIVATE_V4.map(([net, bits]) => {
  const base = parseIPv4(net);
  if (base === null) throw new Error(`bad range ${net}`);
  const size = 2 ** (32 - bits);
  return { start: base, end: base + size - 1 };
});

function isPrivateV4(value: number): boolean {
  return PRIVATE_V4_MASKS.some((r) => value >= r.start && value <= r.end);
}

function embeddedV4(groups: number[], from: number): number {
  return (groups[from] ?? 0) * 65536 + (groups[from + 1] ?? 0);
}

function isPrivateV6(g: number[]): boolean {
  const [g0 = 0, g1 = 0, g2 = 0, g3 = 0, g4 = 0, g5 = 0] = g;
  const firstSixZero = g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0;
  // ::/96 — unspecified (::), loopback (::1) and deprecated IPv4-compatible ::a.b.c.d.
  if (firstSixZero && g5 === 0) return isPrivateV4(embeddedV4(g, 6));
  // ::ffff:0:0/96 — IPv4-mapped.
  if (firstSixZero && g5 === 0xffff) return isPrivateV4(embeddedV4(g, 6));
  // ::ffff:0:0:0/96 — IPv4-translated (SIIT).
  if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0xffff && g5 === 0) {
    return isPrivateV4(embeddedV4(g, 6));
  }
  // 64:ff9b::/96 — NAT64 well-known prefix.
  if (g0 === 0x64 && g1 === 0xff9b && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0) {
    return isPrivateV4(embeddedV4(g, 6));
  }
  // 64:ff9b:1::/48 — local-use NAT64.
  if (g0 === 0x64 && g1 === 0xff9b && g2 === 1) return true;
  // 100::/64 — discard-only.
  if (g0 === 0x100 && g1 === 0 && g2 === 0 && g3 === 0) return true;
  // 2002::/16 — 6to4, the IPv4 address sits in groups 1–2.
  if (g0 === 0x2002) return isPrivateV4(embeddedV4(g, 1));
  // fc00::/7 unique local, fe80::/10 link-local, fec0::/10 site-local, ff00::/8 multicast.
  if ((g0 & 0xfe00) === 0xfc00) return true;
  if ((g0 & 0xffc0) === 0xfe80) return true;
  if ((g0 & 0xffc0) === 0xfec0) return true;
  if ((g0 & 0xff00) === 0xff00) return true;
  return false;
}

/**
 * True when `ip` is loopback, private, link-local, CGNAT, multicast, reserved or otherwise not a
 * public unicast address — for IPv4 and IPv6 (IPv4-mapped, IPv4-compatible, NAT64 and 6to4
 * addresses are judged by the IPv4 address they embed). Anything that is not a valid IP literal
 * also returns true: the guard fails closed.
 */
export function isPrivateAddress(ip: string): boolean {
  const text = ip.startsWith("[") && ip.endsWith("]") ? ip.slice(1, -1) : ip;
  const v4 = parseIPv4(text);
  if (v4 !== null) return isPrivateV4(v4);
  const v6 = parseIPv6(text);
  if (v6 !== null) return isPrivateV6(v6);
  return true;
}

export type TargetUrlCheck =
  | { ok: true; url: URL }
  | {
      ok: false;
      message: string;
      /** `private`: the URL names a loopback/private address or `localhost`; `invalid`: anything else. */
      reason: "invalid" | "private";
    };

/** Longest subscription URL accepted. */
export const MAX_URL_LENGTH = 2048;

function isLocalhostName(hostname: string): boolean {
  const name = hostname.toLowerCase().replace(/\.+$/, "");
  return name === "localhost" || name.endsWith(".localhost");
}

/**
 * Static check of a target URL: absolute `http:`/`https:`, a host, no credentials, at most
 * {@link MAX_URL_LENGTH} characters; unless `allowPrivate`, no `localhost`/`*.localhost` and no
 * literal private address. Host names are checked again at connect time by the sender.
 */
export function validateTargetUrl(raw: string, opts: { allowPrivate: boolean }): TargetUrlCheck {
  if (typeof raw !== "string" || raw.trim() === "") {
    return { ok: false, reason: "invalid", message: "url is required" };
  }
  if (raw.length > MAX_URL_LENGTH) {
    return { ok: false, reason: "invalid", message: `url must be at most ${MAX_URL_LENGTH} characters` };
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, reason: "invalid", message: "url must be an absolute http or https URL" };
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return { ok: false, reason: "invalid", message: "url must use http or https" };
  }
  if (url.username !== "" || url.password !== "") {
    return { ok: false, reason: "invalid", message: "url must not contain credentials" };
  }
  if (url.hostname === "") {
    return { ok: false, reason: "invalid", message: "url must include a host" };
  }
  if (!opts.allowPrivate) {
    if (isLocalhostName(url.hostname)) {
      return {
        ok: false,
        reason: "private",
        message: `url must not point to localhost (${url.hostname})`,
      };
    }
    const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
    if (isIP(host) !== 0 && isPrivateAddress(host)) {
      return {
        ok: false,
        reason: "private",
        message: `url must not point to a private, loopback or reserved address (${host})`,
      };
    }
  }
  return { ok: true, url };
}
