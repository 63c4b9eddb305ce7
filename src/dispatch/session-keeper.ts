import type { Logger } from "pino";
import type { Db, DedicatedSession } from "../store/db.ts";
import { forgetSession, registerSession } from "../store/sessions.ts";
import { Wakeup } from "./wakeup.ts";

/** How soon to try again when the session could not be opened or was lost. */
const RETRY_MS = 1000;

/**
 * Keeps this dispatcher registered in the database for as long as the process lives (PostgreSQL only):
 * a session of its own holds the owner's advisory lock (src/store/sessions.ts). When the process dies
 * the session ends with it, and any other dispatcher takes its in-flight rows back within seconds
 * instead of after their lease. A lost connection is opened again and the owner registered again.
 * Without a registration (the database unreachable at start) the process's rows fall back to their lease.
 * The dispatcher starts it before its first claim and stops it after its last result is recorded.
 */
export class SessionKeeper {
  readonly name = "session-keeper";
  private session: DedicatedSession | null = null;
  private readonly wakeup = new Wakeup();
  private loop: Promise<void> | null = null;
  private stopped = false;
  private firstRegistration: Promise<void> | null = null;

  constructor(private readonly opts: { db: Db; owner: string; log: Logger }) {}

  async start(): Promise<void> {
    if (!this.opts.db.dedicated || this.loop) return;
    let registered!: () => void;
    this.firstRegistration = new Promise<void>((resolve) => {
      registered = resolve;
    });
    this.loop = this.run(registered);
    // Claims start once registered, or after one failed try (then the lease covers this process's rows).
    await this.firstRegistration;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.wakeup.wake();
    await this.loop;
    const session = this.session;
    this.session = null;
    if (session) {
      await forgetSession(session, this.opts.owner).catch(() => {});
      await session.close();
    }
  }

  private async run(registered: () => void): Promise<void> {
    const { db, owner, log } = this.opts;
    const open = db.dedicated!.bind(db);
    while (!this.stopped) {
      let session: DedicatedSession | null = null;
      try {
        session = await open();
        await registerSession(session, owner);
        this.session = session;
        registered();
        log.debug({ owner }, "dispatcher session registered");
        // Wait until the connection is lost or stop() is called.
        await Promise.race([session.lost, this.wakeup.wait(2 ** 31 - 1)]);
        if (this.stopped) return;
        log.warn({ owner }, "dispatcher session lost; registering again");
      } catch (err) {
        registered();
        log.warn({ err, owner }, "could not register the dispatcher session; retrying");
      }
      if (this.session === session) this.session = null;
      await session?.close();
      if (!this.stopped) await this.wakeup.wait(RETRY_MS);
    }
  }
}
