-- Overage pricing per plan and metric (SPEC section 10): per_unit, graduated, volume or package,
-- as the validated JSON the service writes (`billing::pricing::OveragePricing`). A metric with no
-- row is priced per unit at the catalogue's overage rate.
CREATE TABLE plan_overage_pricing (
    plan_id     text NOT NULL REFERENCES plans (plan_id),
    metric      text NOT NULL REFERENCES metrics (metric),
    pricing     jsonb NOT NULL CHECK (
        jsonb_typeof(pricing) = 'object'
        AND pricing ->> 'model' IN ('per_unit', 'graduated', 'volume', 'package')
    ),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (plan_id, metric)
);
