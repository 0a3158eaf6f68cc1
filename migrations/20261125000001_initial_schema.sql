-- SAHOOL Billing Core: initial schema.
-- Forward-only. Enum labels are the lowercase API values, identical to the Rust enums.
-- Financial rows (invoices, invoice_lines, payments, refunds) are never deleted: no foreign key
-- that points at them or from them cascades.

CREATE TYPE plan_tier AS ENUM ('free', 'starter', 'professional', 'enterprise');
CREATE TYPE overage_policy AS ENUM ('billed', 'blocked');
CREATE TYPE metric_kind AS ENUM ('period_counter', 'daily_counter', 'gauge');
CREATE TYPE subscription_status AS ENUM ('trial', 'active', 'past_due', 'suspended', 'canceled');
CREATE TYPE billing_cycle AS ENUM ('monthly', 'quarterly', 'yearly');
CREATE TYPE invoice_status AS ENUM ('draft', 'pending', 'paid', 'overdue', 'canceled', 'refunded');
CREATE TYPE invoice_kind AS ENUM ('subscription', 'proration', 'manual');
CREATE TYPE invoice_line_kind AS ENUM ('plan', 'overage', 'proration', 'credit', 'other');
CREATE TYPE payment_method AS ENUM ('credit_card', 'tharwatt', 'cash', 'bank_transfer', 'mobile_money');
CREATE TYPE payment_status AS ENUM ('pending', 'processing', 'succeeded', 'failed', 'refunded');
CREATE TYPE refund_status AS ENUM ('pending', 'succeeded', 'failed');
CREATE TYPE usage_action AS ENUM ('increment', 'set');

-- Keeps updated_at honest without every UPDATE having to remember it.
CREATE FUNCTION touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

CREATE TABLE currencies (
    code        text PRIMARY KEY CHECK (code ~ '^[A-Z]{3}$'),
    decimals    smallint NOT NULL DEFAULT 2 CHECK (decimals BETWEEN 0 AND 4),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO currencies (code) VALUES ('USD'), ('YER'), ('SAR'), ('AED'), ('EUR');

-- Units of `currency` per one USD, in force from effective_date on.
CREATE TABLE exchange_rates (
    currency        text NOT NULL REFERENCES currencies (code),
    effective_date  date NOT NULL,
    rate            numeric(18, 6) NOT NULL CHECK (rate > 0),
    source          text NOT NULL DEFAULT 'seed',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (currency, effective_date)
);
INSERT INTO exchange_rates (currency, effective_date, rate) VALUES
    ('USD', DATE '2000-01-01', 1),
    ('YER', DATE '2000-01-01', 250),
    ('SAR', DATE '2000-01-01', 3.75),
    ('AED', DATE '2000-01-01', 3.6725),
    ('EUR', DATE '2000-01-01', 0.92);

CREATE TABLE plans (
    plan_id             text PRIMARY KEY CHECK (plan_id ~ '^[a-z][a-z0-9_]{0,99}$'),
    name                text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    name_ar             text NOT NULL CHECK (char_length(name_ar) BETWEEN 1 AND 200),
    description         text NOT NULL DEFAULT '',
    description_ar      text NOT NULL DEFAULT '',
    tier                plan_tier NOT NULL,
    monthly_price_usd   numeric(14, 2) NOT NULL CHECK (monthly_price_usd >= 0),
    quarterly_price_usd numeric(14, 2) NOT NULL CHECK (quarterly_price_usd >= 0),
    yearly_price_usd    numeric(14, 2) NOT NULL CHECK (yearly_price_usd >= 0),
    trial_days          integer NOT NULL DEFAULT 14 CHECK (trial_days BETWEEN 0 AND 365),
    overage             overage_policy NOT NULL DEFAULT 'billed',
    features            jsonb NOT NULL DEFAULT '[]'::jsonb,
    is_active           boolean NOT NULL DEFAULT true,
    sort_order          integer NOT NULL DEFAULT 100,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER plans_touch BEFORE UPDATE ON plans FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

CREATE TABLE metrics (
    metric            text PRIMARY KEY CHECK (metric ~ '^[a-z][a-z0-9_]{0,99}$'),
    kind              metric_kind NOT NULL,
    name              text NOT NULL,
    name_ar           text NOT NULL,
    overage_rate_usd  numeric(18, 6) NOT NULL CHECK (overage_rate_usd >= 0),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- limit_value -1 means unlimited; a metric with no row for a plan has limit 0.
CREATE TABLE plan_limits (
    plan_id      text NOT NULL REFERENCES plans (plan_id),
    metric       text NOT NULL REFERENCES metrics (metric),
    limit_value  bigint NOT NULL CHECK (limit_value >= -1),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (plan_id, metric)
);

CREATE TABLE tenants (
    tenant_id   text PRIMARY KEY CHECK (tenant_id ~ '^[A-Za-z0-9_-]{1,100}$'),
    name        text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    name_ar     text NOT NULL CHECK (char_length(name_ar) BETWEEN 1 AND 200),
    email       text NOT NULL,
    phone       text NOT NULL,
    tax_id      text,
    -- percent, e.g. 5.000 = 5 %
    tax_rate    numeric(6, 3) NOT NULL DEFAULT 0 CHECK (tax_rate >= 0 AND tax_rate <= 100),
    is_active   boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tenants_created_idx ON tenants (created_at DESC, tenant_id DESC);
CREATE TRIGGER tenants_touch BEFORE UPDATE ON tenants FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

CREATE TABLE subscriptions (
    subscription_id       uuid PRIMARY KEY,
    tenant_id             text NOT NULL REFERENCES tenants (tenant_id),
    plan_id               text NOT NULL REFERENCES plans (plan_id),
    status                subscription_status NOT NULL,
    billing_cycle         billing_cycle NOT NULL DEFAULT 'monthly',
    -- a billing_cycle change waits here until the next renewal
    pending_billing_cycle billing_cycle,
    currency              text NOT NULL DEFAULT 'USD' REFERENCES currencies (code),
    payment_method        payment_method,
    anchor_day            smallint NOT NULL CHECK (anchor_day BETWEEN 1 AND 31),
    start_date            date NOT NULL,
    end_date              date NOT NULL,
    next_billing_date     date NOT NULL,
    trial_end_date        date,
    cancel_at_period_end  boolean NOT NULL DEFAULT false,
    canceled_at           timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CHECK (end_date > start_date)
);
CREATE UNIQUE INDEX subscriptions_one_live_per_tenant ON subscriptions (tenant_id)
    WHERE status IN ('trial', 'active', 'past_due', 'suspended');
CREATE INDEX subscriptions_tenant_idx ON subscriptions (tenant_id, created_at DESC);
CREATE INDEX subscriptions_due_idx ON subscriptions (next_billing_date)
    WHERE status IN ('trial', 'active', 'past_due', 'suspended');
CREATE INDEX subscriptions_plan_idx ON subscriptions (plan_id);
CREATE TRIGGER subscriptions_touch BEFORE UPDATE ON subscriptions FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

-- Gapless per-year invoice numbers: the row lock taken by the increment serializes issuers.
CREATE TABLE invoice_number_counters (
    year        integer PRIMARY KEY,
    last_value  integer NOT NULL CHECK (last_value >= 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE invoices (
    invoice_id       uuid PRIMARY KEY,
    invoice_number   text NOT NULL UNIQUE,
    tenant_id        text NOT NULL REFERENCES tenants (tenant_id),
    subscription_id  uuid REFERENCES subscriptions (subscription_id),
    kind             invoice_kind NOT NULL DEFAULT 'subscription',
    status           invoice_status NOT NULL,
    currency         text NOT NULL REFERENCES currencies (code),
    exchange_rate    numeric(18, 6) NOT NULL CHECK (exchange_rate > 0),
    period_start     date,
    period_end       date,
    subtotal         numeric(14, 2) NOT NULL,
    tax_rate         numeric(6, 3) NOT NULL DEFAULT 0 CHECK (tax_rate >= 0),
    tax_amount       numeric(14, 2) NOT NULL DEFAULT 0 CHECK (tax_amount >= 0),
    discount_amount  numeric(14, 2) NOT NULL DEFAULT 0 CHECK (discount_amount >= 0),
    total            numeric(14, 2) NOT NULL CHECK (total >= 0),
    amount_paid      numeric(14, 2) NOT NULL DEFAULT 0 CHECK (amount_paid >= 0),
    amount_due       numeric(14, 2) NOT NULL CHECK (amount_due >= 0),
    issue_date       date NOT NULL,
    due_date         date NOT NULL,
    paid_date        date,
    notes            text,
    notes_ar         text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (amount_paid <= total),
    CHECK (amount_due = total - amount_paid),
    CHECK (total = subtotal + tax_amount - discount_amount),
    CHECK (due_date >= issue_date)
);
-- One subscription invoice per subscription period, whoever issues it.
CREATE UNIQUE INDEX invoices_one_per_period ON invoices (subscription_id, period_start)
    WHERE kind = 'subscription';
CREATE INDEX invoices_tenant_idx ON invoices (tenant_id, created_at DESC, invoice_id DESC);
CREATE INDEX invoices_tenant_status_idx ON invoices (tenant_id, status);
CREATE INDEX invoices_subscription_idx ON invoices (subscription_id, created_at DESC);
CREATE INDEX invoices_unpaid_due_idx ON invoices (due_date) WHERE status IN ('pending', 'overdue');
CREATE TRIGGER invoices_touch BEFORE UPDATE ON invoices FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

CREATE TABLE invoice_lines (
    line_id         uuid PRIMARY KEY,
    invoice_id      uuid NOT NULL REFERENCES invoices (invoice_id),
    tenant_id       text NOT NULL REFERENCES tenants (tenant_id),
    position        integer NOT NULL CHECK (position >= 0),
    kind            invoice_line_kind NOT NULL,
    description     text NOT NULL,
    description_ar  text NOT NULL,
    metric          text REFERENCES metrics (metric),
    quantity        numeric(18, 6) NOT NULL,
    unit_price      numeric(18, 6) NOT NULL,
    -- negative only for credit lines
    amount          numeric(14, 2) NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (invoice_id, position)
);
CREATE INDEX invoice_lines_tenant_idx ON invoice_lines (tenant_id);

CREATE TABLE payments (
    payment_id         uuid PRIMARY KEY,
    tenant_id          text NOT NULL REFERENCES tenants (tenant_id),
    invoice_id         uuid NOT NULL REFERENCES invoices (invoice_id),
    amount             numeric(14, 2) NOT NULL CHECK (amount > 0),
    currency           text NOT NULL REFERENCES currencies (code),
    method             payment_method NOT NULL,
    status             payment_status NOT NULL,
    -- what the gateway was asked to collect (Tharwatt collects YER whatever the invoice currency)
    gateway_amount     numeric(14, 2),
    gateway_currency   text REFERENCES currencies (code),
    external_id        text,
    refunded_amount    numeric(14, 2) NOT NULL DEFAULT 0 CHECK (refunded_amount >= 0),
    failure_reason     text,
    phone_number       text,
    created_by         text,
    confirmed_by       text,
    paid_at            timestamptz,
    processed_at       timestamptz,
    metadata           jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (refunded_amount <= amount)
);
CREATE INDEX payments_tenant_idx ON payments (tenant_id, created_at DESC, payment_id DESC);
CREATE INDEX payments_invoice_idx ON payments (invoice_id);
CREATE INDEX payments_status_idx ON payments (tenant_id, status);
CREATE UNIQUE INDEX payments_external_idx ON payments (method, external_id) WHERE external_id IS NOT NULL;
CREATE TRIGGER payments_touch BEFORE UPDATE ON payments FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

CREATE TABLE refunds (
    refund_id           uuid PRIMARY KEY,
    payment_id          uuid NOT NULL REFERENCES payments (payment_id),
    invoice_id          uuid NOT NULL REFERENCES invoices (invoice_id),
    tenant_id           text NOT NULL REFERENCES tenants (tenant_id),
    amount              numeric(14, 2) NOT NULL CHECK (amount > 0),
    currency            text NOT NULL REFERENCES currencies (code),
    status              refund_status NOT NULL,
    reason              text NOT NULL,
    reason_ar           text,
    external_refund_id  text,
    created_by          text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refunds_payment_idx ON refunds (payment_id);
CREATE INDEX refunds_tenant_idx ON refunds (tenant_id, created_at DESC);
CREATE TRIGGER refunds_touch BEFORE UPDATE ON refunds FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

CREATE TABLE usage_records (
    record_id        uuid PRIMARY KEY,
    tenant_id        text NOT NULL REFERENCES tenants (tenant_id),
    subscription_id  uuid REFERENCES subscriptions (subscription_id),
    metric           text NOT NULL REFERENCES metrics (metric),
    action           usage_action NOT NULL DEFAULT 'increment',
    -- increment: units added (negative only for gauge deltas); set: the new gauge level
    quantity         bigint NOT NULL,
    event_id         text CHECK (char_length(event_id) BETWEEN 1 AND 200),
    recorded_at      timestamptz NOT NULL DEFAULT now(),
    metadata         jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
-- Exactly-once ingestion: an event id counts once per tenant.
CREATE UNIQUE INDEX usage_records_event_idx ON usage_records (tenant_id, event_id) WHERE event_id IS NOT NULL;
CREATE INDEX usage_records_tenant_metric_idx ON usage_records (tenant_id, metric, recorded_at);
CREATE INDEX usage_records_subscription_idx ON usage_records (subscription_id, recorded_at);

-- Running totals that the quota check and the usage write update in one statement, so that
-- concurrent requests can never overshoot a blocked limit. window_start is the billing period
-- start (period counters, gauges) or the UTC day (daily counters).
CREATE TABLE usage_counters (
    tenant_id     text NOT NULL REFERENCES tenants (tenant_id),
    metric        text NOT NULL REFERENCES metrics (metric),
    window_start  date NOT NULL,
    used          bigint NOT NULL DEFAULT 0 CHECK (used >= 0),
    peak          bigint NOT NULL DEFAULT 0 CHECK (peak >= 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, metric, window_start)
);

-- Replays of money-moving POSTs. The row is written in the same transaction as the effect.
CREATE TABLE idempotency_keys (
    scope                text NOT NULL,
    idempotency_key      text NOT NULL CHECK (char_length(idempotency_key) BETWEEN 1 AND 255),
    request_fingerprint  text NOT NULL,
    response_status      smallint,
    response_body        jsonb,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    expires_at           timestamptz NOT NULL DEFAULT now() + interval '48 hours',
    PRIMARY KEY (scope, idempotency_key)
);
CREATE INDEX idempotency_keys_expiry_idx ON idempotency_keys (expires_at);

-- Transactional outbox: written with the state change, relayed to NATS later.
CREATE TABLE outbox_events (
    event_id      uuid PRIMARY KEY,
    seq           bigserial UNIQUE,
    subject       text NOT NULL,
    event_type    text NOT NULL,
    tenant_id     text,
    payload       jsonb NOT NULL,
    occurred_at   timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz,
    attempts      integer NOT NULL DEFAULT 0,
    last_error    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_events_unpublished_idx ON outbox_events (seq) WHERE published_at IS NULL;
