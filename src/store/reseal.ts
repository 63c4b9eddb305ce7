import { insertAudit } from "./audit.ts";
import type { Db } from "./db.ts";
import { SEALED_PREFIX, type SecretBox } from "./secret-box.ts";

/** Any constant: serialises the start-up passes of processes starting at once. */
const RESEAL_LOCK_KEY = 7_302_114_221;
/** Subscriptions sealed again per transaction. */
const BATCH = 500;
/** Batches one pass runs at most (5 million subscriptions); the next start finishes what is left. */
const MAX_BATCHES = 10_000;

/**
 * Seals under the key ring's first key every `secret` and `previous_secret` that is not: stored before
 * encryption, or under a key id further down HERALD_ENCRYPTION_KEY. Run at every start; finds nothing to
 * do once done. Idempotent, and safe with several processes starting at once: each batch runs in one
 * transaction under an advisory lock with its rows locked (a concurrent rotation waits for it, then sees
 * the sealed value), so a second process finds the rows done. Each subscription sealed again gets an
 * audit row by `system`. A value whose key is not in the ring fails the pass, naming the key id.
 */
export async function resealSecrets(db: Db, box: SecretBox): Promise<{ resealed: number }> {
  const current = `${SEALED_PREFIX}${box.primaryKid}:`;
  let resealed = 0;
  for (let batch = 0; batch < MAX_BATCHES; batch++) {
    const n = await db.transaction(async (tx) => {
      await tx.query("SELECT pg_advisory_xact_lock($1)", [RESEAL_LOCK_KEY]);
      const rows = await tx.query<{
        subscription_id: string;
        tenant_id: string;
        secret: string;
        previous_secret: string | null;
      }>(
        `SELECT subscription_id, tenant_id, secret, previous_secret FROM subscriptions
         WHERE NOT starts_with(secret, $1) OR NOT starts_with(previous_secret, $1)
         ORDER BY subscription_id LIMIT $2
         FOR UPDATE`,
        [current, BATCH],
      );
      if (rows.rowCount === 0) return 0;
      const sealed = rows.rows.map((r) => ({
        id: r.subscription_id,
        secret: box.reseal(r.secret),
        previous: r.previous_secret === null ? null : box.reseal(r.previous_secret),
      }));
      await tx.query(
        `UPDATE subscriptions s SET secret = v.secret, previous_secret = v.previous_secret
         FROM unnest($1::text[], $2::text[], $3::text[]) AS v(subscription_id, secret, previous_secret)
         WHERE s.subscription_id = v.subscription_id`,
        [sealed.map((r) => r.id), sealed.map((r) => r.secret), sealed.map((r) => r.previous)],
      );
      await insertAudit(
        tx,
        rows.rows.map((r) => ({
          actor: "system",
          action: "subscription.secret_resealed",
          tenant_id: r.tenant_id,
          subscription_id: r.subscription_id,
          after: { key_id: box.primaryKid },
        })),
      );
      return rows.rowCount;
    });
    resealed += n;
    if (n < BATCH) break;
  }
  return { resealed };
}
