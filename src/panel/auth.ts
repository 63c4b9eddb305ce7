import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * The panel's sessions: stateless, signed with a key derived from the admin token, so any API process
 * of a deployment accepts a session another one issued and nothing is stored.
 *
 * A session cookie is `v1.<issued at, ms, base36>.<random nonce>.<HMAC-SHA256 of the rest>`; it expires
 * {@link SESSION_TTL_MS} after login. Its CSRF token is an HMAC of the nonce (another purpose string),
 * so it is per session, checked on every POST, and cannot be derived without the key. Changing the admin
 * token changes the key and ends every session. Logout clears the cookie and revokes the nonce in this
 * process (the cookie itself is HttpOnly; a copy taken before logout would still work on another API
 * process until it expires).
 */
export const SESSION_COOKIE = "herald_panel";
export const SESSION_TTL_MS = 12 * 3600 * 1000;
export const COOKIE_PATH = "/webhooks";

export interface Session {
  nonce: string;
  issuedAt: number;
  csrf: string;
}

function b64url(buf: Buffer): string {
  return buf.toString("base64url");
}

function sameSecret(a: string, b: string): boolean {
  const x = createHash("sha256").update(a).digest();
  const y = createHash("sha256").update(b).digest();
  return timingSafeEqual(x, y);
}

export class PanelAuth {
  private readonly key: Buffer;
  private readonly adminHash: Buffer;
  /** Nonces logged out in this process, with their expiry. */
  private readonly revoked = new Map<string, number>();

  constructor(
    adminToken: string,
    private readonly now: () => number = Date.now,
  ) {
    this.key = createHash("sha256").update(`herald panel session v1\0${adminToken}`).digest();
    this.adminHash = createHash("sha256").update(adminToken).digest();
  }

  /** Whether `presented` is the admin token (constant time). */
  isAdminToken(presented: string): boolean {
    return timingSafeEqual(createHash("sha256").update(presented).digest(), this.adminHash);
  }

  private mac(purpose: string, text: string): string {
    return b64url(createHmac("sha256", this.key).update(`${purpose}\0${text}`).digest());
  }

  /** A new session: the cookie value to set, and the session it stands for. */
  issue(): { cookie: string; session: Session } {
    const issuedAt = this.now();
    const nonce = b64url(randomBytes(18));
    const body = `v1.${issuedAt.toString(36)}.${nonce}`;
    return {
      cookie: `${body}.${this.mac("session", body)}`,
      session: { nonce, issuedAt, csrf: this.mac("csrf", nonce) },
    };
  }

  /** The session a cookie value stands for, or null when it is malformed, forged, expired or revoked. */
  verify(cookie: string | undefined): Session | null {
    if (!cookie || cookie.length > 200) return null;
    const parts = cookie.split(".");
    if (parts.length !== 4 || parts[0] !== "v1") return null;
    const [, iat, nonce, mac] = parts as [string, string, string, string];
    if (!sameSecret(mac, this.mac("session", `v1.${iat}.${nonce}`))) return null;
    const issuedAt = Number.parseInt(iat, 36);
    const now = this.now();
    if (!Number.isSafeInteger(issuedAt) || issuedAt > now + 60_000 || now - issuedAt > SESSION_TTL_MS) {
      return null;
    }
    if (this.revoked.has(nonce)) return null;
    return { nonce, issuedAt, csrf: this.mac("csrf", nonce) };
  }

  /** Whether a form's CSRF token belongs to this session (constant time). */
  checkCsrf(session: Session, presented: string | undefined): boolean {
    return typeof presented === "string" && presented.length > 0 && sameSecret(presented, session.csrf);
  }

  /** Logout: this process refuses the session from now on (until it would have expired anyway). */
  revoke(session: Session): void {
    const now = this.now();
    for (const [n, exp] of this.revoked) if (exp <= now) this.revoked.delete(n);
    this.revoked.set(session.nonce, session.issuedAt + SESSION_TTL_MS);
  }

  /** The Set-Cookie value for a session (or, with null, one that deletes it). */
  setCookie(value: string | null, secure: boolean): string {
    const attrs = [
      `${SESSION_COOKIE}=${value ?? ""}`,
      `Path=${COOKIE_PATH}`,
      "HttpOnly",
      "SameSite=Strict",
      value === null ? "Max-Age=0" : `Max-Age=${Math.floor(SESSION_TTL_MS / 1000)}`,
    ];
    if (secure) attrs.push("Secure");
    return attrs.join("; ");
  }
}

/** The value of one cookie in a Cookie header. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const i = part.indexOf("=");
    if (i < 0) continue;
    if (part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}
