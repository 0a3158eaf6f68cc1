use super::*;

#[test]
fn the_payload_type_is_the_event_type_and_money_is_a_two_decimal_string() {
    let e = Event::InvoiceOverdue {
        invoice_id: Uuid::nil(),
        invoice_number: "SAH-2026-0001".into(),
        amount_due: Decimal::from(7250),
        currency: "YER".into(),
        due_date: NaiveDate::from_ymd_opt(2026, 12, 10).unwrap(),
    };
    let p = e.payload();
    assert_eq!(p["type"], e.event_type());
    assert_eq!(p["amount_due"], "7250.00");
    assert_eq!(p["due_date"], "2026-12-10");
    let c = Event::SubscriptionCanceled {
        subscription_id: Uuid::nil(),
        at_period_end: true,
    };
    assert_eq!(c.payload()["type"], "subscription.canceled");
    assert_eq!(c.payload()["at_period_end"], true);
}

#[test]
fn an_offline_payment_names_no_gateway_money_and_a_gateway_payment_does() {
    let created = |gateway_amount: Option<Decimal>| Event::PaymentCreated {
        payment_id: Uuid::nil(),
        invoice_id: Uuid::nil(),
        amount: Decimal::from(50),
        currency: "USD".into(),
        gateway_amount,
        gateway_currency: gateway_amount.map(|_| "YER".to_string()),
        method: PaymentMethod::Tharwatt,
        status: PaymentStatus::Processing,
    };
    let offline = created(None).payload();
    assert_eq!(offline["type"], "payment.created");
    assert_eq!(offline["amount"], "50.00");
    assert!(!offline.contains_key("gateway_amount"));
    assert!(!offline.contains_key("gateway_currency"));
    let gateway = created(Some(Decimal::from(26750))).payload();
    assert_eq!(gateway["gateway_amount"], "26750.00");
    assert_eq!(gateway["gateway_currency"], "YER");
    assert_eq!(gateway["method"], "tharwatt");
    assert_eq!(gateway["status"], "processing");
}

/// The shapes the SQL-built `invoice_generated` had (`total::text`, enum labels), and
/// the rate and proration forms, are kept.
#[test]
fn invoice_rate_and_plan_change_payloads_keep_their_shapes() {
    let g = Event::InvoiceGenerated {
        invoice_id: Uuid::nil(),
        invoice_number: "SAH-2026-0042".into(),
        subscription_id: None,
        kind: InvoiceKind::Subscription,
        status: InvoiceStatus::Pending,
        currency: "USD".into(),
        total: Decimal::new(2900, 2),
        due_date: NaiveDate::from_ymd_opt(2026, 12, 17).unwrap(),
    };
    let p = g.payload();
    assert_eq!(p["type"], "invoice_generated");
    assert_eq!(p["total"], "29.00");
    assert_eq!(p["kind"], "subscription");
    assert_eq!(p["status"], "pending");
    assert!(p["subscription_id"].is_null());
    let r = Event::ExchangeRateChanged {
        currency: "YER".into(),
        rate: Decimal::new(2505, 1),
        effective_date: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
        previous_rate: None,
        replaced: false,
        changed_by: "admin".into(),
    };
    assert_eq!(r.payload()["rate"], "250.50");
    assert!(r.payload()["previous_rate"].is_null());
    let c = Event::SubscriptionPlanChanged {
        subscription_id: Uuid::nil(),
        old_plan: "starter".into(),
        new_plan: "professional".into(),
        proration: None,
    };
    assert!(c.payload()["proration"].is_null());
}
