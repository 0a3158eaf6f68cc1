-- Gateway payments, signed webhooks and refunds.

-- Every webhook event we acted on, once: a redelivered event finds its row and changes nothing.
-- Stripe events are keyed by the event id; Tharwatt callbacks by "transaction_id:status".
CREATE TABLE processed_webhook_events (
    provider     text NOT NULL CHECK (provider IN ('stripe', 'tharwatt')),
    event_id     text NOT NULL CHECK (char_length(event_id) BETWEEN 1 AND 300),
    event_type   text NOT NULL,
    payment_id   uuid REFERENCES payments (payment_id),
    -- what the event did: settled, failed, ignored, amount_mismatch, ...
    outcome      text NOT NULL,
    payload      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, event_id)
);
CREATE INDEX processed_webhook_events_payment_idx ON processed_webhook_events (payment_id);

-- The Idempotency-Key a gateway payment was created under, so that a retry after an unknown
-- gateway outcome reuses the same payment (and so the same gateway idempotency key) instead of
-- charging twice.
ALTER TABLE payments ADD COLUMN idempotency_scope text;
ALTER TABLE payments ADD COLUMN idempotency_key text;
CREATE INDEX payments_idempotency_idx ON payments (idempotency_scope, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

ALTER TABLE refunds ADD COLUMN failure_reason text;
ALTER TABLE refunds ADD CONSTRAINT refunds_reason_len CHECK (char_length(reason) BETWEEN 1 AND 1000);
CREATE UNIQUE INDEX refunds_external_idx ON refunds (external_refund_id)
    WHERE external_refund_id IS NOT NULL;
