-- One usage event (POST /v1/tenants/{id}/usage) written in one statement, so the request costs
-- one round trip and, outside an Idempotency-Key transaction, one autocommit.
--
-- The caller passes the subscription and plan state it validated the event against (it may
-- come from a short-lived cache). That state is compared with the database first; when any of
-- it changed, nothing is written and the outcome is 'stale', and the caller re-reads and
-- retries. Then, as before: the event id is claimed in usage_event_ids (a racing copy waits on
-- its primary key and then sees 'duplicate'); the quota check and the counter change are one
-- UPDATE (the row lock serialises writers, the WHERE clause is re-checked on the newest row); a
-- refusal raises SQLSTATE 'SB429' with the current level as DETAIL, which aborts the statement,
-- so the claim is undone and nothing is left behind. A gauge's first row in a window starts
-- from the most recent earlier level; counters start at 0.
CREATE FUNCTION record_usage_event(
    p_record_id       uuid,
    p_tenant_id       text,
    p_subscription_id uuid,
    p_metric          text,
    p_action          usage_action,
    p_quantity        bigint,
    p_event_id        text,
    p_recorded_at     timestamptz,
    p_metadata        jsonb,
    p_window_start    date,
    p_gauge           boolean,
    p_limit           bigint,
    p_status          subscription_status,
    p_plan_id         text,
    p_overage         overage_policy,
    p_billing_cycle   billing_cycle,
    p_anchor_day      smallint,
    p_start_date      date,
    p_end_date        date)
RETURNS TABLE (r_outcome text, r_level bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_set     boolean := p_action = 'set';
    v_blocked boolean := p_overage = 'blocked';
    v_level   bigint;
BEGIN
    PERFORM 1
      FROM subscriptions s
      JOIN plans p ON p.plan_id = s.plan_id
      LEFT JOIN plan_limits l ON l.plan_id = s.plan_id AND l.metric = p_metric
     WHERE s.subscription_id = p_subscription_id AND s.tenant_id = p_tenant_id
       AND s.status = p_status AND s.plan_id = p_plan_id AND s.billing_cycle = p_billing_cycle
       AND s.anchor_day = p_anchor_day AND s.start_date = p_start_date
       AND s.end_date = p_end_date AND p.overage = p_overage
       AND COALESCE(l.limit_value, 0) = p_limit;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'stale'::text, NULL::bigint;
        RETURN;
    END IF;

    IF p_event_id IS NOT NULL THEN
        INSERT INTO usage_event_ids (tenant_id, event_id, record_id, recorded_at)
        VALUES (p_tenant_id, p_event_id, p_record_id, p_recorded_at)
        ON CONFLICT (tenant_id, event_id) DO NOTHING;
        IF NOT FOUND THEN
            RETURN QUERY SELECT 'duplicate'::text, NULL::bigint;
            RETURN;
        END IF;
    END IF;

    LOOP
        UPDATE usage_counters
           SET used = CASE WHEN v_set THEN p_quantity ELSE GREATEST(used + p_quantity, 0) END,
               peak = GREATEST(peak, CASE WHEN v_set THEN p_quantity ELSE used + p_quantity END),
               updated_at = now()
         WHERE tenant_id = p_tenant_id AND metric = p_metric AND window_start = p_window_start
           AND (NOT v_blocked OR p_limit = -1 OR (NOT v_set AND p_quantity <= 0)
                OR CASE WHEN v_set THEN p_quantity ELSE used + p_quantity END <= p_limit)
        RETURNING used INTO v_level;
        EXIT WHEN FOUND;

        SELECT used INTO v_level FROM usage_counters
         WHERE tenant_id = p_tenant_id AND metric = p_metric AND window_start = p_window_start;
        IF FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'SB429', MESSAGE = 'quota_exceeded',
                                  DETAIL = v_level::text;
        END IF;

        INSERT INTO usage_counters (tenant_id, metric, window_start, used, peak)
        SELECT p_tenant_id, p_metric, p_window_start, lvl, lvl FROM (
            SELECT CASE WHEN p_gauge THEN COALESCE((
                SELECT c.used FROM usage_counters c
                 WHERE c.tenant_id = p_tenant_id AND c.metric = p_metric
                   AND c.window_start < p_window_start
                 ORDER BY c.window_start DESC LIMIT 1), 0) ELSE 0 END AS lvl) AS carried
        ON CONFLICT (tenant_id, metric, window_start) DO NOTHING;
    END LOOP;

    INSERT INTO usage_records (record_id, tenant_id, subscription_id, metric, action, quantity,
                               event_id, recorded_at, metadata)
    VALUES (p_record_id, p_tenant_id, p_subscription_id, p_metric, p_action, p_quantity,
            p_event_id, p_recorded_at, p_metadata);

    RETURN QUERY SELECT 'accepted'::text, v_level;
END
$$;
