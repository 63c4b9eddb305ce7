-- Herald schema, version 7: signing secrets are stored sealed (AES-256-GCM, src/store/secret-box.ts).
--
-- The columns keep their type: each now holds enc:v1:<kid>:<iv>:<tag>:<ciphertext>. The key is not in
-- the database, so SQL cannot seal the rows stored before: every process seals them at start, under the
-- first key of HERALD_ENCRYPTION_KEY (src/store/reseal.ts), and a value stored before that still opens
-- as itself until then. The comments say so to whoever reads the schema, e.g. in a pg_dump.
COMMENT ON COLUMN subscriptions.secret IS
  'signing secret, sealed: enc:v1:<key id>:<iv>:<tag>:<ciphertext> (AES-256-GCM, key from HERALD_ENCRYPTION_KEY or the data dir; docs/schema.md)';
COMMENT ON COLUMN subscriptions.previous_secret IS
  'the secret before the last rotation, sealed like secret; signs alongside it until previous_secret_expires_at';
