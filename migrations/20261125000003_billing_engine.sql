-- Billing engine: tenant credit balances (downgrade credits applied to later invoices) and the
-- record of daily job runs (one leader per day across replicas).

CREATE TABLE credit_balance_entries (
    entry_id         uuid PRIMARY KEY,
    tenant_id        text NOT NULL REFERENCES tenants (tenant_id),
    currency         text NOT NULL REFERENCES currencies (code),
    -- positive: credit granted; negative: credit applied to an invoice
    amount           numeric(14, 2) NOT NULL CHECK (amount <> 0),
    reason           text NOT NULL,
    subscription_id  uuid REFERENCES subscriptions (subscription_id),
    invoice_id       uuid REFERENCES invoices (invoice_id),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX credit_balance_entries_tenant_idx ON credit_balance_entries (tenant_id, currency);

CREATE TABLE job_runs (
    job          text NOT NULL,
    run_date     date NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    report       jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job, run_date)
);
