-- One `quota.exceeded` event per tenant, metric and counter window (the day of a daily counter,
-- the billing period's start otherwise), however many requests are refused in it: the first
-- refusal claims the row with ON CONFLICT DO NOTHING in the transaction that writes the event,
-- so concurrent refusals, on any replica, write one event between them.
CREATE TABLE quota_exceeded_notices (
    tenant_id     text NOT NULL REFERENCES tenants (tenant_id),
    metric        text NOT NULL REFERENCES metrics (metric),
    window_start  date NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, metric, window_start)
);
