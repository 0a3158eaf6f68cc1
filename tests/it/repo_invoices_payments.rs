//! The invoice and payment repositories against a real PostgreSQL database.

use crate::common;

use billing_core::billing::types::{
    InvoiceKind, InvoiceLineKind, InvoiceStatus, PaymentMethod, PaymentStatus,
};
use billing_core::pagination::Page;
use billing_core::repository::invoices::{
    InvoiceChanges, InvoiceRepository, InvoiceRow, NewInvoice, NewLine,
};
use billing_core::repository::payments::{
    MethodTotal, NewPayment, PaymentChanges, PaymentRepository, PaymentRow,
};
use chrono::{NaiveDate, TimeZone, Utc};
use common::TestApp;
use rust_decimal::Decimal;
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

fn d(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap()
}

fn day(m: u32, dd: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, m, dd).unwrap()
}

/// A tenant and an active subscription, inserted directly.
async fn tenant(conn: &mut PgConnection, tenant: &str) -> Uuid {
    sqlx::query(
        "INSERT INTO tenants (tenant_id, name, name_ar, email, phone)
         VALUES ($1, 'Farm', 'مزرعة', 'farm@example.com', '+967771234567')",
    )
    .bind(tenant)
    .execute(&mut *conn)
    .await
    .unwrap();
    let sub = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO subscriptions (subscription_id, tenant_id, plan_id, status, currency, anchor_day,
             start_date, end_date, next_billing_date)
         VALUES ($1, $2, 'starter', 'active', 'USD', 1, DATE '2026-01-01', DATE '2026-02-01', DATE '2026-02-01')",
    )
    .bind(sub)
    .bind(tenant)
    .execute(&mut *conn)
    .await
    .unwrap();
    sub
}

/// A one-line USD subscription invoice of `total` for the period starting `start`.
async fn invoice(
    conn: &mut PgConnection,
    tenant: &str,
    sub: Uuid,
    start: NaiveDate,
    total: &str,
) -> InvoiceRow {
    let number = InvoiceRepository::next_number(conn, 2026).await.unwrap();
    let amount = d(total);
    let line = NewLine {
        kind: InvoiceLineKind::Plan,
        description: "Starter - Monthly".into(),
        description_ar: "المبتدئ - شهري".into(),
        metric: None,
        quantity: Decimal::ONE,
        unit_price: amount,
        amount,
    };
    let new = NewInvoice {
        invoice_id: Uuid::new_v4(),
        invoice_number: &number,
        tenant_id: tenant,
        subscription_id: Some(sub),
        kind: InvoiceKind::Subscription,
        status: InvoiceStatus::Pending,
        currency: "USD",
        exchange_rate: Decimal::ONE,
        period_start: Some(start),
        period_end: start.checked_add_months(chrono::Months::new(1)),
        subtotal: amount,
        tax_rate: Decimal::ZERO,
        tax_amount: Decimal::ZERO,
        discount_amount: Decimal::ZERO,
        total: amount,
        amount_paid: Decimal::ZERO,
        issue_date: start,
        due_date: start + chrono::Days::new(7),
        paid_date: None,
        notes: None,
        notes_ar: None,
        plan_id: Some("starter"),
    };
    InvoiceRepository::create(conn, &new, &[line])
        .await
        .unwrap()
        .expect("a new period")
}

async fn payment(
    conn: &mut PgConnection,
    inv: &InvoiceRow,
    amount: &str,
    method: PaymentMethod,
) -> PaymentRow {
    PaymentRepository::create(
        conn,
        &NewPayment {
            payment_id: Uuid::new_v4(),
            tenant_id: &inv.tenant_id,
            invoice_id: inv.invoice_id,
            amount: d(amount),
            currency: &inv.currency,
            method,
            status: PaymentStatus::Pending,
            gateway_amount: None,
            gateway_currency: None,
            external_id: None,
            phone_number: None,
            created_by: Some("test"),
            metadata: &json!({}),
        },
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn invoices_are_found_listed_and_updated_within_their_tenant() {
    let app = TestApp::spawn().await;
    let mut conn = app.pool.acquire().await.unwrap();
    let sub = tenant(&mut conn, "t-a").await;
    let other_sub = tenant(&mut conn, "t-b").await;
    let a1 = invoice(&mut conn, "t-a", sub, day(1, 1), "29.00").await;
    let a2 = invoice(&mut conn, "t-a", sub, day(2, 1), "29.00").await;
    let a3 = invoice(&mut conn, "t-a", sub, day(3, 1), "29.00").await;
    let b1 = invoice(&mut conn, "t-b", other_sub, day(1, 1), "99.00").await;
    assert_eq!(a1.invoice_number, "SAH-2026-0001");
    assert_eq!(b1.invoice_number, "SAH-2026-0004");
    assert!(InvoiceRepository::create(&mut conn, &dup(&a1), &[])
        .await
        .unwrap()
        .is_none());

    let got = InvoiceRepository::get_by_id(&mut conn, Some("t-a"), a1.invoice_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.total, d("29.00"));
    assert!(
        InvoiceRepository::get_by_id(&mut conn, Some("t-b"), a1.invoice_id)
            .await
            .unwrap()
            .is_none()
    );
    let by_number =
        InvoiceRepository::get_by_invoice_number(&mut conn, Some("t-a"), "SAH-2026-0002")
            .await
            .unwrap();
    assert_eq!(by_number.unwrap().invoice_id, a2.invoice_id);
    assert!(
        InvoiceRepository::get_by_invoice_number(&mut conn, Some("t-b"), "SAH-2026-0002")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        InvoiceRepository::get_by_invoice_number(&mut conn, None, "SAH-2026-0004")
            .await
            .unwrap()
            .is_some()
    );

    let changes = InvoiceChanges {
        status: Some(InvoiceStatus::Overdue),
        notes: Some(Some("late".into())),
        due_date: Some(day(1, 20)),
        ..Default::default()
    };
    let updated = InvoiceRepository::update(&mut conn, "t-a", a1.invoice_id, &changes)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (updated.status, updated.notes.as_deref(), updated.due_date),
        (InvoiceStatus::Overdue, Some("late"), day(1, 20))
    );
    assert!(
        InvoiceRepository::update(&mut conn, "t-b", a1.invoice_id, &changes)
            .await
            .unwrap()
            .is_none()
    );

    let page = InvoiceRepository::list_by_tenant(&mut conn, "t-a", None, 2, None)
        .await
        .unwrap();
    assert_eq!((page.total, page.has_more), (3, true));
    assert_eq!(
        page.items.iter().map(|i| i.invoice_id).collect::<Vec<_>>(),
        [a3.invoice_id, a2.invoice_id]
    );
    assert_eq!(page.next, Some(a2.invoice_id.to_string()));
    let rest = InvoiceRepository::list_by_tenant(&mut conn, "t-a", None, 2, Some(a2.invoice_id))
        .await
        .unwrap();
    assert_eq!(
        (rest.items.len(), rest.items[0].invoice_id, rest.has_more),
        (1, a1.invoice_id, false)
    );
    assert_eq!(rest.next, None);
    let overdue =
        InvoiceRepository::list_by_tenant(&mut conn, "t-a", Some(InvoiceStatus::Overdue), 10, None)
            .await
            .unwrap();
    assert_eq!((overdue.items.len(), overdue.total), (1, 1));
    let none = InvoiceRepository::list_by_tenant(&mut conn, "t-a", None, 10, Some(b1.invoice_id))
        .await
        .unwrap();
    assert!(
        none.items.is_empty(),
        "another tenant's cursor is unknown here"
    );

    let of_sub = InvoiceRepository::list_by_subscription(&mut conn, "t-a", sub)
        .await
        .unwrap();
    assert_eq!(of_sub.len(), 3);
    assert!(
        InvoiceRepository::list_by_subscription(&mut conn, "t-b", sub)
            .await
            .unwrap()
            .is_empty()
    );
    let lines = InvoiceRepository::lines_for(&mut conn, &[a1.invoice_id, b1.invoice_id])
        .await
        .unwrap();
    assert_eq!(lines.len(), 2);
}

/// The same invoice with a new id and number: the period key must refuse it.
fn dup(inv: &InvoiceRow) -> NewInvoice<'_> {
    NewInvoice {
        invoice_id: Uuid::new_v4(),
        invoice_number: "SAH-2026-9999",
        tenant_id: &inv.tenant_id,
        subscription_id: inv.subscription_id,
        kind: InvoiceKind::Subscription,
        status: InvoiceStatus::Pending,
        currency: "USD",
        exchange_rate: Decimal::ONE,
        period_start: inv.period_start,
        period_end: inv.period_end,
        subtotal: inv.subtotal,
        tax_rate: Decimal::ZERO,
        tax_amount: Decimal::ZERO,
        discount_amount: Decimal::ZERO,
        total: inv.total,
        amount_paid: Decimal::ZERO,
        issue_date: inv.issue_date,
        due_date: inv.due_date,
        paid_date: None,
        notes: None,
        notes_ar: None,
        plan_id: inv.plan_id.as_deref(),
    }
}

#[tokio::test]
async fn mark_paid_adds_amounts_and_refuses_overpayment() {
    let app = TestApp::spawn().await;
    let mut conn = app.pool.acquire().await.unwrap();
    let sub = tenant(&mut conn, "t-pay").await;
    let inv = invoice(&mut conn, "t-pay", sub, day(1, 1), "29.00").await;
    let part =
        InvoiceRepository::mark_paid(&mut conn, "t-pay", inv.invoice_id, d("10.00"), day(1, 3))
            .await
            .unwrap()
            .unwrap();
    assert_eq!(
        (
            part.amount_paid,
            part.amount_due,
            part.status,
            part.paid_date
        ),
        (d("10.00"), d("19.00"), InvoiceStatus::Pending, None)
    );
    assert!(InvoiceRepository::mark_paid(
        &mut conn,
        "t-pay",
        inv.invoice_id,
        d("19.01"),
        day(1, 3)
    )
    .await
    .unwrap()
    .is_none());
    assert!(
        InvoiceRepository::mark_paid(&mut conn, "other", inv.invoice_id, d("1.00"), day(1, 3))
            .await
            .unwrap()
            .is_none()
    );
    let full =
        InvoiceRepository::mark_paid(&mut conn, "t-pay", inv.invoice_id, d("19.00"), day(1, 4))
            .await
            .unwrap()
            .unwrap();
    assert_eq!(
        (full.amount_due, full.status, full.paid_date),
        (Decimal::ZERO, InvoiceStatus::Paid, Some(day(1, 4)))
    );
}

#[tokio::test]
async fn overdue_invoices_and_revenue_are_reported() {
    let app = TestApp::spawn().await;
    let mut conn = app.pool.acquire().await.unwrap();
    let sub = tenant(&mut conn, "t-rep").await;
    let jan = invoice(&mut conn, "t-rep", sub, day(1, 1), "29.00").await;
    let feb = invoice(&mut conn, "t-rep", sub, day(2, 1), "29.00").await;
    let mar = invoice(&mut conn, "t-rep", sub, day(3, 1), "29.00").await;
    InvoiceRepository::mark_paid(&mut conn, "t-rep", jan.invoice_id, d("29.00"), day(1, 5))
        .await
        .unwrap();
    InvoiceRepository::mark_paid(&mut conn, "t-rep", feb.invoice_id, d("5.00"), day(2, 5))
        .await
        .unwrap();

    // Due dates: Jan 8 (paid), Feb 8 (partly paid), Mar 8.
    let overdue = InvoiceRepository::get_overdue(&mut conn, day(3, 1))
        .await
        .unwrap();
    assert_eq!(
        overdue.iter().map(|i| i.invoice_id).collect::<Vec<_>>(),
        [feb.invoice_id]
    );
    let overdue = InvoiceRepository::get_overdue(&mut conn, day(3, 9))
        .await
        .unwrap();
    assert_eq!(
        overdue.iter().map(|i| i.invoice_id).collect::<Vec<_>>(),
        [feb.invoice_id, mar.invoice_id]
    );

    let revenue = InvoiceRepository::get_total_revenue(&mut conn, day(1, 1), day(1, 31), None)
        .await
        .unwrap();
    assert_eq!(revenue.get("USD"), Some(&d("29.00")));
    let none = InvoiceRepository::get_total_revenue(&mut conn, day(2, 1), day(2, 28), Some("USD"))
        .await
        .unwrap();
    assert!(
        none.is_empty(),
        "a partly paid invoice is not revenue yet: {none:?}"
    );
    let yer = InvoiceRepository::get_total_revenue(&mut conn, day(1, 1), day(12, 31), Some("YER"))
        .await
        .unwrap();
    assert!(yer.is_empty());
}

#[tokio::test]
async fn payments_move_from_pending_to_succeeded_or_failed_once() {
    let app = TestApp::spawn().await;
    let mut conn = app.pool.acquire().await.unwrap();
    let sub = tenant(&mut conn, "t-p").await;
    tenant(&mut conn, "t-q").await;
    let inv = invoice(&mut conn, "t-p", sub, day(1, 1), "29.00").await;
    let p1 = payment(&mut conn, &inv, "10.00", PaymentMethod::Cash).await;
    let p2 = payment(&mut conn, &inv, "5.00", PaymentMethod::BankTransfer).await;
    let p3 = payment(&mut conn, &inv, "7.00", PaymentMethod::Cash).await;
    assert_eq!(p1.status, PaymentStatus::Pending);

    assert!(
        PaymentRepository::get_by_id(&mut conn, Some("t-p"), p1.payment_id)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        PaymentRepository::get_by_id(&mut conn, Some("t-q"), p1.payment_id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(PaymentRepository::get_by_id(&mut conn, None, p1.payment_id)
        .await
        .unwrap()
        .is_some());
    assert!(PaymentRepository::lock(&mut conn, "t-p", p1.payment_id)
        .await
        .unwrap()
        .is_some());

    let of_invoice = PaymentRepository::list_by_invoice(&mut conn, "t-p", inv.invoice_id)
        .await
        .unwrap();
    assert_eq!(
        of_invoice.iter().map(|p| p.payment_id).collect::<Vec<_>>(),
        [p1.payment_id, p2.payment_id, p3.payment_id]
    );
    assert!(
        PaymentRepository::list_by_invoice(&mut conn, "t-q", inv.invoice_id)
            .await
            .unwrap()
            .is_empty()
    );

    let changes = PaymentChanges {
        status: Some(PaymentStatus::Processing),
        external_id: Some(Some("ext-1".into())),
        ..Default::default()
    };
    let p2u = PaymentRepository::update(&mut conn, "t-p", p2.payment_id, &changes)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (p2u.status, p2u.external_id.as_deref()),
        (PaymentStatus::Processing, Some("ext-1"))
    );
    assert!(
        PaymentRepository::update(&mut conn, "t-q", p2.payment_id, &changes)
            .await
            .unwrap()
            .is_none()
    );

    let now = Utc.with_ymd_and_hms(2026, 1, 3, 9, 0, 0).unwrap();
    let ok = PaymentRepository::mark_succeeded(
        &mut conn,
        "t-p",
        p1.payment_id,
        None,
        Some("admin"),
        now,
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        (ok.status, ok.paid_at, ok.confirmed_by.as_deref()),
        (PaymentStatus::Succeeded, Some(now), Some("admin"))
    );
    assert!(
        PaymentRepository::mark_succeeded(&mut conn, "t-p", p1.payment_id, None, None, now)
            .await
            .unwrap()
            .is_none()
    );
    let ok2 = PaymentRepository::mark_succeeded(&mut conn, "t-p", p2.payment_id, None, None, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ok2.external_id.as_deref(), Some("ext-1"));
    let failed =
        PaymentRepository::mark_failed(&mut conn, "t-p", p3.payment_id, "bounced", None, now)
            .await
            .unwrap()
            .unwrap();
    assert_eq!(
        (failed.status, failed.failure_reason.as_deref()),
        (PaymentStatus::Failed, Some("bounced"))
    );
    assert!(
        PaymentRepository::mark_failed(&mut conn, "t-p", p1.payment_id, "late", None, now)
            .await
            .unwrap()
            .is_none()
    );

    let Page {
        items: page,
        total,
        has_more: more,
        ..
    } = PaymentRepository::list_by_tenant(&mut conn, "t-p", None, 2, None)
        .await
        .unwrap();
    assert_eq!((page.len(), total, more), (2, 3, true));
    let Page {
        items: rest,
        has_more: more,
        ..
    } = PaymentRepository::list_by_tenant(&mut conn, "t-p", None, 2, Some(page[1].payment_id))
        .await
        .unwrap();
    assert_eq!((rest.len(), more), (1, false));
    let Page {
        items: succeeded,
        total,
        ..
    } = PaymentRepository::list_by_tenant(
        &mut conn,
        "t-p",
        Some(PaymentStatus::Succeeded),
        10,
        None,
    )
    .await
    .unwrap();
    assert_eq!((succeeded.len(), total), (2, 2));

    let by_method =
        PaymentRepository::get_total_by_method(&mut conn, Some(day(1, 1)), Some(day(1, 31)))
            .await
            .unwrap();
    assert_eq!(
        by_method,
        vec![
            MethodTotal {
                method: PaymentMethod::Cash,
                currency: "USD".into(),
                total: d("10.00"),
                count: 1
            },
            MethodTotal {
                method: PaymentMethod::BankTransfer,
                currency: "USD".into(),
                total: d("5.00"),
                count: 1
            },
        ]
    );
    assert!(
        PaymentRepository::get_total_by_method(&mut conn, Some(day(2, 1)), None)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        PaymentRepository::get_total_by_method(&mut conn, None, None)
            .await
            .unwrap()
            .len(),
        2
    );
}
