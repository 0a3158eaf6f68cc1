-- An immediate cancellation ends the period today (issue 10). Canceled on its first day, a
-- subscription's period is empty (end_date = start_date); every live one keeps a non-empty one.
ALTER TABLE subscriptions DROP CONSTRAINT subscriptions_check;
ALTER TABLE subscriptions ADD CONSTRAINT subscriptions_period_check
    CHECK (end_date > start_date OR (status = 'canceled' AND end_date = start_date));
