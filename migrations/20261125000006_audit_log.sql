-- The audit log: who did which admin or money-moving action, to what, with what effect.
-- Rows are written in the same transaction as the change they describe and are never changed
-- afterwards (the trigger below refuses UPDATE and DELETE).
CREATE TABLE audit_log (
    audit_id     uuid PRIMARY KEY,
    -- The read cursor (GET /v1/audit?after=seq), ascending in insertion order.
    seq          bigserial UNIQUE,
    occurred_at  timestamptz NOT NULL DEFAULT now(),
    actor        text NOT NULL CHECK (char_length(actor) BETWEEN 1 AND 300),
    actor_role   text NOT NULL CHECK (actor_role IN ('super_admin', 'tenant_admin', 'tenant_user', 'service', 'system')),
    -- No foreign key: the log outlives whatever it describes and is not tenant-owned data.
    tenant_id    text,
    action       text NOT NULL CHECK (action ~ '^[a-z][a-z_]*(\.[a-z][a-z_]*)+$'),
    target_type  text NOT NULL,
    target_id    text NOT NULL,
    before       jsonb,
    after        jsonb,
    request_id   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_tenant_idx ON audit_log (tenant_id, seq);
CREATE INDEX audit_log_action_idx ON audit_log (action, seq);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log rows cannot be changed or deleted';
END;
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
