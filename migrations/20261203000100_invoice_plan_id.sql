-- The plan an invoice was issued for (issue 10): the revenue report files each invoice under
-- it, not under the plan its subscription has today. NULL for an invoice without a plan
-- (reported as `none`). Plans are archived, never deleted, so the reference always holds.
ALTER TABLE invoices ADD COLUMN plan_id text REFERENCES plans (plan_id);

-- Backfill, best first. The backfill is not a change of the invoice: updated_at stays.
ALTER TABLE invoices DISABLE TRIGGER invoices_touch;

-- 1. The plan the invoice names: its plan line reads "{plan name} - {cycle}", a proration
--    invoice's charge line "Charge for remaining days on {plan name}[: …]". Only names that
--    belong to exactly one plan; the longest matching name wins.
WITH unique_names AS (
    SELECT min(plan_id) AS plan_id, name FROM plans GROUP BY name HAVING count(*) = 1
), named AS (
    SELECT DISTINCT ON (l.invoice_id) l.invoice_id, p.plan_id
      FROM invoice_lines l
      JOIN unique_names p
        ON (l.kind = 'plan' AND left(l.description, length(p.name) + 3) = p.name || ' - ')
        OR (l.kind = 'proration'
            AND (l.description = 'Charge for remaining days on ' || p.name
                 OR left(l.description, length(p.name) + 30) = 'Charge for remaining days on ' || p.name || ':'))
     ORDER BY l.invoice_id, l.position, length(p.name) DESC
)
UPDATE invoices i SET plan_id = named.plan_id FROM named WHERE named.invoice_id = i.invoice_id;

-- 2. The plan in force when the invoice was issued, from the first plan change of its
--    subscription after that moment: its old plan (its new plan for a proration invoice,
--    which is written in the same transaction as the change it prorates).
WITH changes AS (
    SELECT (payload->>'subscription_id')::uuid AS subscription_id, occurred_at, seq,
           payload->>'old_plan' AS old_plan, payload->>'new_plan' AS new_plan
      FROM outbox_events
     WHERE event_type = 'subscription.plan_changed'
       AND payload->>'subscription_id' ~* '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$'
), first_after AS (
    SELECT DISTINCT ON (i.invoice_id) i.invoice_id,
           CASE WHEN i.kind = 'proration' THEN c.new_plan ELSE c.old_plan END AS plan_id
      FROM invoices i
      JOIN changes c ON c.subscription_id = i.subscription_id AND c.occurred_at >= i.created_at
     WHERE i.plan_id IS NULL
     ORDER BY i.invoice_id, c.occurred_at, c.seq
)
UPDATE invoices i SET plan_id = f.plan_id
  FROM first_after f JOIN plans p ON p.plan_id = f.plan_id
 WHERE f.invoice_id = i.invoice_id;

-- 3. Otherwise the subscription's plan (it never changed, as far as the records show).
UPDATE invoices i SET plan_id = s.plan_id
  FROM subscriptions s
 WHERE s.subscription_id = i.subscription_id AND i.plan_id IS NULL;

ALTER TABLE invoices ENABLE TRIGGER invoices_touch;
