-- Proration lines were stored with the remaining days as their quantity and the prorated
-- amount as their unit price, so a printed line read "31 × 99.00 = 99.00" (issue 10). A
-- prorated line is one unit at its prorated amount; the amounts do not change.
UPDATE invoice_lines SET quantity = 1, updated_at = now()
 WHERE kind = 'proration' AND unit_price = amount AND quantity <> 1;
