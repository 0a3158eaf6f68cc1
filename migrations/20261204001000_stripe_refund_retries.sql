-- Card payments as Stripe really behaves (issue 12).

-- The Idempotency-Key a gateway refund was created under: a retry after a timeout or a 5xx
-- continues with the same refund row, so Stripe sees the same idempotency key (the refund id)
-- and cannot refund twice.
ALTER TABLE refunds ADD COLUMN idempotency_scope text;
ALTER TABLE refunds ADD COLUMN idempotency_key text;
CREATE INDEX refunds_idempotency_idx ON refunds (idempotency_scope, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- Why the money goes back, in Stripe's vocabulary (its Refund `reason`).
ALTER TABLE refunds ADD COLUMN reason_code text NOT NULL DEFAULT 'requested_by_customer'
    CHECK (reason_code IN ('duplicate', 'fraudulent', 'requested_by_customer'));

-- The reconciliation job looks up gateway payments and refunds left open, oldest first.
CREATE INDEX payments_open_gateway_idx ON payments (updated_at)
    WHERE status IN ('pending', 'processing') AND method IN ('credit_card', 'tharwatt');
CREATE INDEX refunds_pending_idx ON refunds (updated_at) WHERE status = 'pending';
