//! Invoices and their lines. Invoices are never deleted; totals always equal the sum of lines
//! plus tax minus discount (CHECK constraints back the arithmetic).

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use crate::billing::types::{InvoiceKind, InvoiceLineKind, InvoiceStatus};

#[derive(Clone, Debug, FromRow)]
pub struct InvoiceRow {
    pub invoice_id: Uuid,
    pub invoice_number: String,
    pub tenant_id: String,
    pub subscription_id: Option<Uuid>,
    pub kind: InvoiceKind,
    pub status: InvoiceStatus,
    pub currency: String,
    pub exchange_rate: Decimal,
    pub period_start: Option<NaiveDate>,
    pub period_end: Option<NaiveDate>,
    pub subtotal: Decimal,
    pub tax_rate: Decimal,
    pub tax_amount: Decimal,
    pub discount_amount: Decimal,
    pub total: Decimal,
    pub amount_paid: Decimal,
    pub amount_due: Decimal,
    pub issue_date: NaiveDate,
    pub due_date: NaiveDate,
    pub paid_date: Option<NaiveDate>,
    pub notes: Option<String>,
    pub notes_ar: Option<String>,
    /// The plan the invoice was issued for (`None` for an invoice without a plan).
    pub plan_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug, FromRow)]
pub struct InvoiceLineRow {
    pub line_id: Uuid,
    pub invoice_id: Uuid,
    pub position: i32,
    pub kind: InvoiceLineKind,
    pub description: String,
    pub description_ar: String,
    pub metric: Option<String>,
    pub quantity: Decimal,
    pub unit_price: Decimal,
    pub amount: Decimal,
}

pub const INVOICE_COLUMNS: &str = "invoice_id, invoice_number, tenant_id, subscription_id, kind, \
    status, currency, exchange_rate, period_start, period_end, subtotal, tax_rate, tax_amount, \
    discount_amount, total, amount_paid, amount_due, issue_date, due_date, paid_date, notes, \
    notes_ar, plan_id, created_at, updated_at";

/// A line ready to store: `amount` is already in the invoice currency and rounded.
#[derive(Clone, Debug)]
pub struct NewLine {
    pub kind: InvoiceLineKind,
    pub description: String,
    pub description_ar: String,
    pub metric: Option<String>,
    pub quantity: Decimal,
    pub unit_price: Decimal,
    pub amount: Decimal,
}

/// An invoice ready to store; the service computed every figure.
pub struct NewInvoice<'a> {
    pub invoice_id: Uuid,
    pub invoice_number: &'a str,
    pub tenant_id: &'a str,
    pub subscription_id: Option<Uuid>,
    pub kind: InvoiceKind,
    pub status: InvoiceStatus,
    pub currency: &'a str,
    pub exchange_rate: Decimal,
    pub period_start: Option<NaiveDate>,
    pub period_end: Option<NaiveDate>,
    pub subtotal: Decimal,
    pub tax_rate: Decimal,
    pub tax_amount: Decimal,
    pub total: Decimal,
    pub amount_paid: Decimal,
    pub issue_date: NaiveDate,
    pub due_date: NaiveDate,
    pub paid_date: Option<NaiveDate>,
    pub notes: Option<&'a str>,
    pub notes_ar: Option<&'a str>,
    pub plan_id: Option<&'a str>,
}

/// An owned, fully computed invoice waiting to be stored (batch issuing keeps many).
#[derive(Clone, Debug)]
pub struct InvoiceInsert {
    pub invoice_id: Uuid,
    pub tenant_id: String,
    pub subscription_id: Option<Uuid>,
    pub kind: InvoiceKind,
    pub status: InvoiceStatus,
    pub currency: String,
    pub exchange_rate: Decimal,
    pub period_start: Option<NaiveDate>,
    pub period_end: Option<NaiveDate>,
    pub subtotal: Decimal,
    pub tax_rate: Decimal,
    pub tax_amount: Decimal,
    pub total: Decimal,
    pub issue_date: NaiveDate,
    pub due_date: NaiveDate,
    pub paid_date: Option<NaiveDate>,
    pub notes: Option<String>,
    pub notes_ar: Option<String>,
    pub plan_id: Option<String>,
    pub lines: Vec<NewLine>,
    pub event_id: Uuid,
}

impl InvoiceInsert {
    /// The borrowed form the single-invoice statement takes (number chosen by the statement).
    pub fn as_new(&self) -> NewInvoice<'_> {
        NewInvoice {
            invoice_id: self.invoice_id,
            invoice_number: "",
            tenant_id: &self.tenant_id,
            subscription_id: self.subscription_id,
            kind: self.kind,
            status: self.status,
            currency: &self.currency,
            exchange_rate: self.exchange_rate,
            period_start: self.period_start,
            period_end: self.period_end,
            subtotal: self.subtotal,
            tax_rate: self.tax_rate,
            tax_amount: self.tax_amount,
            total: self.total,
            amount_paid: Decimal::ZERO,
            issue_date: self.issue_date,
            due_date: self.due_date,
            paid_date: self.paid_date,
            notes: self.notes.as_deref(),
            notes_ar: self.notes_ar.as_deref(),
            plan_id: self.plan_id.as_deref(),
        }
    }
}

pub struct InvoiceRepository;

/// Where an invoice number comes from: the year's counter, or given (tests, imports).
enum Number<'a> {
    Next(i32),
    Given(&'a str),
}

impl InvoiceRepository {
    /// Takes the next number of `year`. The counter row stays locked until the transaction
    /// ends, which keeps numbers gapless (a rollback returns the number) and unique.
    pub async fn next_number(conn: &mut PgConnection, year: i32) -> sqlx::Result<String> {
        let n: i32 = sqlx::query_scalar(
            "INSERT INTO invoice_number_counters (year, last_value) VALUES ($1, 1)
             ON CONFLICT (year) DO UPDATE
                SET last_value = invoice_number_counters.last_value + 1, updated_at = now()
             RETURNING last_value",
        )
        .bind(year)
        .fetch_one(conn)
        .await?;
        Ok(format!("SAH-{year}-{n:04}"))
    }

    /// Inserts the invoice and its lines. `Ok(None)` when the subscription period already has
    /// its invoice (the unique period key).
    pub async fn create(
        conn: &mut PgConnection,
        inv: &NewInvoice<'_>,
        lines: &[NewLine],
    ) -> sqlx::Result<Option<InvoiceRow>> {
        Self::insert(conn, Number::Given(inv.invoice_number), inv, lines, None).await
    }

    /// Issues an invoice in ONE statement: takes the next number of `year`, inserts the
    /// invoice and its lines, and records the `invoice_generated` outbox event `event_id`.
    /// `inv.invoice_number` is ignored. `Ok(None)` when the period already has its invoice —
    /// the counter did move, so the caller must roll back (a savepoint) to keep numbers gapless.
    pub async fn create_numbered(
        conn: &mut PgConnection,
        year: i32,
        inv: &NewInvoice<'_>,
        lines: &[NewLine],
        event_id: Uuid,
    ) -> sqlx::Result<Option<InvoiceRow>> {
        Self::insert(conn, Number::Next(year), inv, lines, Some(event_id)).await
    }

    async fn insert(
        conn: &mut PgConnection,
        number: Number<'_>,
        inv: &NewInvoice<'_>,
        lines: &[NewLine],
        event_id: Option<Uuid>,
    ) -> sqlx::Result<Option<InvoiceRow>> {
        let (year, given) = match number {
            Number::Next(y) => (y, None),
            Number::Given(n) => (0, Some(n)),
        };
        let n = lines.len();
        let ids: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
        let positions: Vec<i32> = (0..n as i32).collect();
        let kinds: Vec<InvoiceLineKind> = lines.iter().map(|l| l.kind).collect();
        let descs: Vec<&str> = lines.iter().map(|l| l.description.as_str()).collect();
        let descs_ar: Vec<&str> = lines.iter().map(|l| l.description_ar.as_str()).collect();
        let metrics: Vec<Option<&str>> = lines.iter().map(|l| l.metric.as_deref()).collect();
        let qty: Vec<Decimal> = lines.iter().map(|l| l.quantity).collect();
        let unit: Vec<Decimal> = lines.iter().map(|l| l.unit_price).collect();
        let amounts: Vec<Decimal> = lines.iter().map(|l| l.amount).collect();
        // Every data-modifying CTE runs whether or not the final SELECT reads it; the lines
        // and the event take their rows from `inv`, so a period conflict inserts neither.
        sqlx::query_as(&format!(
            "WITH num AS (
                 INSERT INTO invoice_number_counters (year, last_value)
                 SELECT $21, 1 WHERE $2::text IS NULL
                 ON CONFLICT (year) DO UPDATE
                    SET last_value = invoice_number_counters.last_value + 1, updated_at = now()
                 RETURNING 'SAH-' || year || '-'
                           || lpad(last_value::text, greatest(4, length(last_value::text)), '0') AS number
             ), chosen AS (
                 SELECT number FROM num UNION ALL SELECT $2::text WHERE $2::text IS NOT NULL
             ), inv AS (
                 INSERT INTO invoices (invoice_id, invoice_number, tenant_id, subscription_id, kind, status,
                     currency, exchange_rate, period_start, period_end, subtotal, tax_rate, tax_amount,
                     discount_amount, total, amount_paid, amount_due, issue_date, due_date, paid_date,
                     notes, notes_ar, plan_id)
                 SELECT $1, chosen.number, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 0, $14, $15,
                        $14 - $15, $16, $17, $18, $19, $20, $32
                 FROM chosen
                 ON CONFLICT (subscription_id, period_start) WHERE kind = 'subscription' DO NOTHING
                 RETURNING {INVOICE_COLUMNS}
             ), lines AS (
                 INSERT INTO invoice_lines (line_id, invoice_id, tenant_id, position, kind, description,
                     description_ar, metric, quantity, unit_price, amount)
                 SELECT t.id, inv.invoice_id, inv.tenant_id, t.pos, t.k, t.d, t.da, t.m, t.q, t.u, t.a
                 FROM inv, UNNEST($23::uuid[], $24::int[], $25::invoice_line_kind[], $26::text[],
                                  $27::text[], $28::text[], $29::numeric[], $30::numeric[], $31::numeric[])
                      AS t(id, pos, k, d, da, m, q, u, a)
             ), ev AS (
                 INSERT INTO outbox_events (event_id, subject, event_type, tenant_id, payload)
                 SELECT $22, 'sahool.billing.invoice_generated', 'invoice_generated', inv.tenant_id,
                        jsonb_build_object(
                            'event_id', $22, 'type', 'invoice_generated', 'occurred_at', now(),
                            'tenant_id', inv.tenant_id, 'invoice_id', inv.invoice_id,
                            'invoice_number', inv.invoice_number, 'subscription_id', inv.subscription_id,
                            'kind', inv.kind, 'status', inv.status, 'currency', inv.currency,
                            'total', inv.total::text, 'due_date', inv.due_date)
                 FROM inv WHERE $22::uuid IS NOT NULL
             )
             SELECT {INVOICE_COLUMNS} FROM inv"
        ))
        .bind(inv.invoice_id)
        .bind(given)
        .bind(inv.tenant_id)
        .bind(inv.subscription_id)
        .bind(inv.kind)
        .bind(inv.status)
        .bind(inv.currency)
        .bind(inv.exchange_rate)
        .bind(inv.period_start)
        .bind(inv.period_end)
        .bind(inv.subtotal)
        .bind(inv.tax_rate)
        .bind(inv.tax_amount)
        .bind(inv.total)
        .bind(inv.amount_paid)
        .bind(inv.issue_date)
        .bind(inv.due_date)
        .bind(inv.paid_date)
        .bind(inv.notes)
        .bind(inv.notes_ar)
        .bind(year)
        .bind(event_id)
        .bind(&ids)
        .bind(&positions)
        .bind(&kinds)
        .bind(&descs)
        .bind(&descs_ar)
        .bind(&metrics)
        .bind(&qty)
        .bind(&unit)
        .bind(&amounts)
        .bind(inv.plan_id)
        .fetch_optional(&mut *conn)
        .await
    }

    /// Issues many unpaid-so-far invoices of one `year` in ONE statement: reserves their numbers
    /// (in slice order), inserts invoices, lines and `invoice_generated` events. The counter
    /// row is locked only from here to the commit, so concurrent billing runs overlap. Returns
    /// how many invoices were inserted; fewer than given means a period was already invoiced
    /// and the caller must roll back (the numbers were reserved for all).
    pub async fn create_many_numbered(
        conn: &mut PgConnection,
        year: i32,
        invoices: &[InvoiceInsert],
    ) -> sqlx::Result<u64> {
        if invoices.is_empty() {
            return Ok(0);
        }
        let col = |f: fn(&InvoiceInsert) -> Option<Decimal>| -> Vec<Option<Decimal>> {
            invoices.iter().map(f).collect()
        };
        let ids: Vec<Uuid> = invoices.iter().map(|i| i.invoice_id).collect();
        let tenants: Vec<&str> = invoices.iter().map(|i| i.tenant_id.as_str()).collect();
        let subs: Vec<Option<Uuid>> = invoices.iter().map(|i| i.subscription_id).collect();
        let kinds: Vec<InvoiceKind> = invoices.iter().map(|i| i.kind).collect();
        let statuses: Vec<InvoiceStatus> = invoices.iter().map(|i| i.status).collect();
        let currencies: Vec<&str> = invoices.iter().map(|i| i.currency.as_str()).collect();
        let rates = col(|i| Some(i.exchange_rate));
        let p_start: Vec<Option<NaiveDate>> = invoices.iter().map(|i| i.period_start).collect();
        let p_end: Vec<Option<NaiveDate>> = invoices.iter().map(|i| i.period_end).collect();
        let subtotals = col(|i| Some(i.subtotal));
        let tax_rates = col(|i| Some(i.tax_rate));
        let taxes = col(|i| Some(i.tax_amount));
        let totals = col(|i| Some(i.total));
        let issued: Vec<NaiveDate> = invoices.iter().map(|i| i.issue_date).collect();
        let dues: Vec<NaiveDate> = invoices.iter().map(|i| i.due_date).collect();
        let paid: Vec<Option<NaiveDate>> = invoices.iter().map(|i| i.paid_date).collect();
        let notes: Vec<Option<&str>> = invoices.iter().map(|i| i.notes.as_deref()).collect();
        let notes_ar: Vec<Option<&str>> = invoices.iter().map(|i| i.notes_ar.as_deref()).collect();
        let events: Vec<Uuid> = invoices.iter().map(|i| i.event_id).collect();
        let plans: Vec<Option<&str>> = invoices.iter().map(|i| i.plan_id.as_deref()).collect();
        let all_lines: Vec<(Uuid, i32, &NewLine)> = invoices
            .iter()
            .flat_map(|i| {
                i.lines
                    .iter()
                    .enumerate()
                    .map(move |(n, l)| (i.invoice_id, n as i32, l))
            })
            .collect();
        let line_ids: Vec<Uuid> = all_lines.iter().map(|_| Uuid::new_v4()).collect();
        let line_inv: Vec<Uuid> = all_lines.iter().map(|l| l.0).collect();
        let line_pos: Vec<i32> = all_lines.iter().map(|l| l.1).collect();
        let line_kind: Vec<InvoiceLineKind> = all_lines.iter().map(|l| l.2.kind).collect();
        let line_d: Vec<&str> = all_lines.iter().map(|l| l.2.description.as_str()).collect();
        let line_da: Vec<&str> = all_lines
            .iter()
            .map(|l| l.2.description_ar.as_str())
            .collect();
        let line_m: Vec<Option<&str>> = all_lines.iter().map(|l| l.2.metric.as_deref()).collect();
        let line_q: Vec<Decimal> = all_lines.iter().map(|l| l.2.quantity).collect();
        let line_u: Vec<Decimal> = all_lines.iter().map(|l| l.2.unit_price).collect();
        let line_a: Vec<Decimal> = all_lines.iter().map(|l| l.2.amount).collect();
        let inserted: i64 = sqlx::query_scalar(
            "WITH c AS (
                 INSERT INTO invoice_number_counters (year, last_value) VALUES ($1, $2)
                 ON CONFLICT (year) DO UPDATE
                    SET last_value = invoice_number_counters.last_value + $2, updated_at = now()
                 RETURNING last_value
             ), src AS (
                 SELECT t.*, c.last_value - $2 + t.ord AS num
                 FROM c, UNNEST($3::uuid[], $4::text[], $5::uuid[], $6::invoice_kind[],
                                $7::invoice_status[], $8::text[], $9::numeric[], $10::date[],
                                $11::date[], $12::numeric[], $13::numeric[], $14::numeric[],
                                $15::numeric[], $16::date[], $17::date[], $18::date[], $19::text[],
                                $20::text[], $21::uuid[], $32::text[]) WITH ORDINALITY
                      AS t(invoice_id, tenant_id, subscription_id, kind, status, currency,
                           exchange_rate, period_start, period_end, subtotal, tax_rate, tax_amount,
                           total, issue_date, due_date, paid_date, notes, notes_ar, event_id,
                           plan_id, ord)
             ), inv AS (
                 INSERT INTO invoices (invoice_id, invoice_number, tenant_id, subscription_id, kind,
                     status, currency, exchange_rate, period_start, period_end, subtotal, tax_rate,
                     tax_amount, discount_amount, total, amount_paid, amount_due, issue_date,
                     due_date, paid_date, notes, notes_ar, plan_id)
                 SELECT invoice_id, 'SAH-' || $1 || '-' || lpad(num::text, greatest(4, length(num::text)), '0'),
                        tenant_id, subscription_id, kind, status, currency, exchange_rate,
                        period_start, period_end, subtotal, tax_rate, tax_amount, 0, total, 0,
                        total, issue_date, due_date, paid_date, notes, notes_ar, plan_id
                 FROM src ORDER BY ord
                 ON CONFLICT (subscription_id, period_start) WHERE kind = 'subscription' DO NOTHING
                 RETURNING invoice_id, invoice_number, tenant_id, subscription_id, kind, status,
                           currency, total, due_date
             ), lines AS (
                 INSERT INTO invoice_lines (line_id, invoice_id, tenant_id, position, kind,
                     description, description_ar, metric, quantity, unit_price, amount)
                 SELECT l.id, l.inv, inv.tenant_id, l.pos, l.k, l.d, l.da, l.m, l.q, l.u, l.a
                 FROM UNNEST($22::uuid[], $23::uuid[], $24::int[], $25::invoice_line_kind[],
                             $26::text[], $27::text[], $28::text[], $29::numeric[], $30::numeric[],
                             $31::numeric[]) AS l(id, inv, pos, k, d, da, m, q, u, a)
                 JOIN inv ON inv.invoice_id = l.inv
             ), ev AS (
                 INSERT INTO outbox_events (event_id, subject, event_type, tenant_id, payload)
                 SELECT src.event_id, 'sahool.billing.invoice_generated', 'invoice_generated',
                        inv.tenant_id,
                        jsonb_build_object(
                            'event_id', src.event_id, 'type', 'invoice_generated',
                            'occurred_at', now(), 'tenant_id', inv.tenant_id,
                            'invoice_id', inv.invoice_id, 'invoice_number', inv.invoice_number,
                            'subscription_id', inv.subscription_id, 'kind', inv.kind,
                            'status', inv.status, 'currency', inv.currency,
                            'total', inv.total::text, 'due_date', inv.due_date)
                 FROM inv JOIN src ON src.invoice_id = inv.invoice_id
             )
             SELECT count(*) FROM inv",
        )
        .bind(year)
        .bind(invoices.len() as i32)
        .bind(&ids)
        .bind(&tenants)
        .bind(&subs)
        .bind(&kinds)
        .bind(&statuses)
        .bind(&currencies)
        .bind(&rates)
        .bind(&p_start)
        .bind(&p_end)
        .bind(&subtotals)
        .bind(&tax_rates)
        .bind(&taxes)
        .bind(&totals)
        .bind(&issued)
        .bind(&dues)
        .bind(&paid)
        .bind(&notes)
        .bind(&notes_ar)
        .bind(&events)
        .bind(&line_ids)
        .bind(&line_inv)
        .bind(&line_pos)
        .bind(&line_kind)
        .bind(&line_d)
        .bind(&line_da)
        .bind(&line_m)
        .bind(&line_q)
        .bind(&line_u)
        .bind(&line_a)
        .bind(&plans)
        .fetch_one(&mut *conn)
        .await?;
        Ok(inserted as u64)
    }

    /// The invoice if it belongs to `tenant_id` (`None` for a platform caller's any-tenant read).
    pub async fn get_by_id(
        conn: &mut PgConnection,
        tenant_id: Option<&str>,
        invoice_id: Uuid,
    ) -> sqlx::Result<Option<InvoiceRow>> {
        sqlx::query_as(&format!(
            "SELECT {INVOICE_COLUMNS} FROM invoices WHERE invoice_id = $1 AND ($2::text IS NULL OR tenant_id = $2)"
        ))
        .bind(invoice_id)
        .bind(tenant_id)
        .fetch_optional(conn)
        .await
    }

    pub async fn lines(
        conn: &mut PgConnection,
        invoice_id: Uuid,
    ) -> sqlx::Result<Vec<InvoiceLineRow>> {
        sqlx::query_as(
            "SELECT line_id, invoice_id, position, kind, description, description_ar, metric,
                    quantity, unit_price, amount
             FROM invoice_lines WHERE invoice_id = $1 ORDER BY position",
        )
        .bind(invoice_id)
        .fetch_all(conn)
        .await
    }

    /// The subscription invoice of the period starting `period_start`, if issued.
    pub async fn get_for_period(
        conn: &mut PgConnection,
        tenant_id: &str,
        subscription_id: Uuid,
        period_start: NaiveDate,
    ) -> sqlx::Result<Option<InvoiceRow>> {
        sqlx::query_as(&format!(
            "SELECT {INVOICE_COLUMNS} FROM invoices
             WHERE tenant_id = $1 AND subscription_id = $2 AND period_start = $3 AND kind = 'subscription'"
        ))
        .bind(tenant_id)
        .bind(subscription_id)
        .bind(period_start)
        .fetch_optional(conn)
        .await
    }
}

/// Fields an update may change; `None` leaves the column alone, `Some(None)` clears notes.
#[derive(Clone, Debug, Default)]
pub struct InvoiceChanges {
    pub status: Option<InvoiceStatus>,
    pub notes: Option<Option<String>>,
    pub notes_ar: Option<Option<String>>,
    pub due_date: Option<NaiveDate>,
}

impl InvoiceRepository {
    /// Locks the invoice (third in the lock order tenant → subscription → invoice → payment).
    pub async fn lock(
        conn: &mut PgConnection,
        tenant_id: &str,
        invoice_id: Uuid,
    ) -> sqlx::Result<Option<InvoiceRow>> {
        sqlx::query_as(&format!(
            "SELECT {INVOICE_COLUMNS} FROM invoices WHERE tenant_id = $1 AND invoice_id = $2 FOR NO KEY UPDATE"
        ))
        .bind(tenant_id)
        .bind(invoice_id)
        .fetch_optional(conn)
        .await
    }

    pub async fn get_by_invoice_number(
        conn: &mut PgConnection,
        tenant_id: Option<&str>,
        invoice_number: &str,
    ) -> sqlx::Result<Option<InvoiceRow>> {
        sqlx::query_as(&format!(
            "SELECT {INVOICE_COLUMNS} FROM invoices
             WHERE invoice_number = $1 AND ($2::text IS NULL OR tenant_id = $2)"
        ))
        .bind(invoice_number)
        .bind(tenant_id)
        .fetch_optional(conn)
        .await
    }

    /// Newest first (`created_at DESC, invoice_id DESC`) after the `starting_after` invoice,
    /// with the true total under the same filter. An unknown cursor yields an empty page.
    pub async fn list_by_tenant(
        conn: &mut PgConnection,
        tenant_id: &str,
        status: Option<InvoiceStatus>,
        limit: i64,
        starting_after: Option<Uuid>,
    ) -> sqlx::Result<crate::pagination::Page<InvoiceRow>> {
        use crate::repository::keyset::Keyset;
        const LIST: Keyset =
            Keyset::desc("invoices", INVOICE_COLUMNS, &["created_at", "invoice_id"]);
        let only = status.map(|s| ("status", s));
        LIST.of_tenant(conn, tenant_id, only, starting_after, limit)
            .await
    }

    /// Every invoice of one subscription, newest first.
    pub async fn list_by_subscription(
        conn: &mut PgConnection,
        tenant_id: &str,
        subscription_id: Uuid,
    ) -> sqlx::Result<Vec<InvoiceRow>> {
        sqlx::query_as(&format!(
            "SELECT {INVOICE_COLUMNS} FROM invoices WHERE tenant_id = $1 AND subscription_id = $2
             ORDER BY created_at DESC, invoice_id DESC"
        ))
        .bind(tenant_id)
        .bind(subscription_id)
        .fetch_all(conn)
        .await
    }

    /// The lines of several invoices at once (list pages), in invoice then position order.
    pub async fn lines_for(
        conn: &mut PgConnection,
        invoice_ids: &[Uuid],
    ) -> sqlx::Result<Vec<InvoiceLineRow>> {
        sqlx::query_as(
            "SELECT line_id, invoice_id, position, kind, description, description_ar, metric,
                    quantity, unit_price, amount
             FROM invoice_lines WHERE invoice_id = ANY($1) ORDER BY invoice_id, position",
        )
        .bind(invoice_ids)
        .fetch_all(conn)
        .await
    }

    /// Applies `changes`; `None` when the tenant has no such invoice. Amounts are not
    /// changeable here: they move only through `mark_paid` (and refunds).
    pub async fn update(
        conn: &mut PgConnection,
        tenant_id: &str,
        invoice_id: Uuid,
        changes: &InvoiceChanges,
    ) -> sqlx::Result<Option<InvoiceRow>> {
        let mut q =
            sqlx::QueryBuilder::<sqlx::Postgres>::new("UPDATE invoices SET updated_at = now()");
        if let Some(v) = changes.status {
            q.push(", status = ").push_bind(v);
        }
        if let Some(v) = &changes.notes {
            q.push(", notes = ").push_bind(v.clone());
        }
        if let Some(v) = &changes.notes_ar {
            q.push(", notes_ar = ").push_bind(v.clone());
        }
        if let Some(v) = changes.due_date {
            q.push(", due_date = ").push_bind(v);
        }
        q.push(" WHERE tenant_id = ")
            .push_bind(tenant_id.to_string());
        q.push(" AND invoice_id = ").push_bind(invoice_id);
        q.push(format!(" RETURNING {INVOICE_COLUMNS}"));
        q.build_query_as().fetch_optional(conn).await
    }

    /// Adds a settled `amount` to the invoice. The caller holds the invoice lock and has
    /// checked the amount; the WHERE clause refuses anything over `amount_due` (or on a
    /// voided/refunded invoice) by returning `None`, so an overpayment can never be stored.
    /// Fully paid → status `paid` with `paid_date = paid_on`.
    pub async fn mark_paid(
        conn: &mut PgConnection,
        tenant_id: &str,
        invoice_id: Uuid,
        amount: Decimal,
        paid_on: NaiveDate,
    ) -> sqlx::Result<Option<InvoiceRow>> {
        sqlx::query_as(&format!(
            "UPDATE invoices SET amount_paid = amount_paid + $3, amount_due = amount_due - $3,
                 status = CASE WHEN amount_due - $3 = 0 THEN 'paid'::invoice_status ELSE status END,
                 paid_date = CASE WHEN amount_due - $3 = 0 THEN $4 ELSE paid_date END
             WHERE tenant_id = $1 AND invoice_id = $2 AND $3 > 0 AND $3 <= amount_due
               AND status NOT IN ('canceled', 'refunded')
             RETURNING {INVOICE_COLUMNS}"
        ))
        .bind(tenant_id)
        .bind(invoice_id)
        .bind(amount)
        .bind(paid_on)
        .fetch_optional(conn)
        .await
    }

    /// Unpaid invoices (pending or overdue, something still due) whose due date is before
    /// `as_of`, across tenants, oldest due first. Read only: dunning locks each before acting.
    pub async fn get_overdue(
        conn: &mut PgConnection,
        as_of: NaiveDate,
    ) -> sqlx::Result<Vec<InvoiceRow>> {
        sqlx::query_as(&format!(
            "SELECT {INVOICE_COLUMNS} FROM invoices
             WHERE status IN ('pending', 'overdue') AND due_date < $1 AND amount_due > 0
             ORDER BY due_date, invoice_id"
        ))
        .bind(as_of)
        .fetch_all(conn)
        .await
    }

    /// Collected revenue per currency: the sum of `amount_paid` of paid invoices whose
    /// `paid_date` is within `[from, to]` (inclusive). Currencies are never added together;
    /// `currency` restricts the answer to one of them.
    pub async fn get_total_revenue(
        conn: &mut PgConnection,
        from: NaiveDate,
        to: NaiveDate,
        currency: Option<&str>,
    ) -> sqlx::Result<std::collections::BTreeMap<String, Decimal>> {
        let rows: Vec<(String, Decimal)> = sqlx::query_as(
            "SELECT currency, COALESCE(sum(amount_paid), 0) FROM invoices
             WHERE status = 'paid' AND paid_date BETWEEN $1 AND $2
               AND ($3::text IS NULL OR currency = $3)
             GROUP BY currency",
        )
        .bind(from)
        .bind(to)
        .bind(currency)
        .fetch_all(conn)
        .await?;
        Ok(rows.into_iter().collect())
    }
}
