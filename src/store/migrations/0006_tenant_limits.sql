-- Herald schema, version 6: per-tenant limits set by the admin (docs/api.md, PUT /v1/tenants/:id/limits).
-- A tenant without a row has the deployment's defaults (HERALD_MAX_SUBSCRIPTIONS_PER_TENANT).
CREATE TABLE tenant_limits (
  tenant_id         text        PRIMARY KEY,
  max_subscriptions integer     NOT NULL CHECK (max_subscriptions BETWEEN 0 AND 1000000),
  updated_at        timestamptz NOT NULL DEFAULT now()
);
