-- Coupons (SPEC section 10): a discount a super admin defines and subscriptions redeem.
-- The code is the key clients use; it is never reused, so an archived coupon keeps its code.
CREATE TABLE coupons (
    code             text PRIMARY KEY CHECK (code ~ '^[A-Z0-9_-]{3,40}$'),
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    name_ar          text NOT NULL CHECK (length(name_ar) BETWEEN 1 AND 200),
    percent_off      numeric(5, 2) CHECK (percent_off > 0 AND percent_off <= 100),
    amount_off       numeric(14, 2) CHECK (amount_off > 0),
    currency         text CHECK (currency IN ('USD', 'YER', 'SAR', 'AED', 'EUR')),
    duration         text NOT NULL CHECK (duration IN ('once', 'repeating', 'forever')),
    duration_periods integer CHECK (duration_periods BETWEEN 1 AND 36),
    plan_ids         text[] NOT NULL DEFAULT '{}',
    max_redemptions  integer CHECK (max_redemptions > 0),
    redeem_by        date,
    times_redeemed   integer NOT NULL DEFAULT 0 CHECK (times_redeemed >= 0),
    archived_at      timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT coupons_one_kind_of_discount CHECK ((percent_off IS NULL) <> (amount_off IS NULL)),
    CONSTRAINT coupons_amount_has_currency CHECK ((amount_off IS NULL) = (currency IS NULL)),
    CONSTRAINT coupons_periods_iff_repeating
        CHECK ((duration = 'repeating') = (duration_periods IS NOT NULL)),
    CONSTRAINT coupons_never_over_redeemed
        CHECK (max_redemptions IS NULL OR times_redeemed <= max_redemptions)
);


-- A subscription's redemption of a coupon. At most one applies at a time; a removed one stays
-- as history. `first_period_start` is the start of the first billing period it covers (the
-- sign-up period when redeemed at sign-up, else the next period); `invoices_discounted` and
-- `last_period_start` count what it has covered, for `once` and `repeating`.
CREATE TABLE coupon_redemptions (
    redemption_id        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    coupon_code          text NOT NULL REFERENCES coupons (code),
    tenant_id            text NOT NULL REFERENCES tenants (tenant_id),
    subscription_id      uuid NOT NULL REFERENCES subscriptions (subscription_id),
    redeemed_on          date NOT NULL,
    first_period_start   date NOT NULL,
    invoices_discounted  integer NOT NULL DEFAULT 0 CHECK (invoices_discounted >= 0),
    periods_discounted   integer NOT NULL DEFAULT 0 CHECK (periods_discounted >= 0),
    last_period_start    date,
    -- repeating: the end (exclusive) of the last billing period covered
    covers_until         date,
    removed_at           timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX coupon_redemptions_one_per_subscription
    ON coupon_redemptions (subscription_id) WHERE removed_at IS NULL;
CREATE INDEX coupon_redemptions_tenant_idx ON coupon_redemptions (tenant_id);
