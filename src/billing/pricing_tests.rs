use super::*;
use crate::billing::money::round_money;
use proptest::prelude::*;

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn tier(up_to: Option<u64>, price: &str, fee: Option<&str>) -> Tier {
    Tier {
        up_to,
        unit_price: dec(price),
        flat_fee: fee.map(dec),
    }
}

fn three_tiers() -> Vec<Tier> {
    vec![
        tier(Some(1000), "0.01", None),
        tier(Some(5000), "0.008", Some("2.50")),
        tier(None, "0.005", None),
    ]
}

#[test]
fn graduated_prices_each_unit_in_its_tier_with_the_flat_fee_as_its_own_line() {
    let lines = OveragePricing::Graduated {
        tiers: three_tiers(),
    }
    .lines(6200);
    let q: Vec<u64> = lines.iter().map(|l| l.quantity).collect();
    assert_eq!(q, vec![1000, 4000, 1, 1200]);
    assert_eq!(
        lines[1].part,
        LinePart::Tier {
            index: 1,
            from: 1001,
            up_to: Some(5000)
        }
    );
    assert_eq!(lines[2].part, LinePart::FlatFee { index: 1 });
    let amounts: Vec<String> = lines.iter().map(|l| l.amount.to_string()).collect();
    assert_eq!(amounts, vec!["10.00", "32.00", "2.50", "6.00"]);
    assert_eq!(total(&lines), dec("50.50"));
}

#[test]
fn volume_prices_all_units_at_the_tier_the_total_falls_in() {
    let p = OveragePricing::Volume {
        tiers: three_tiers(),
    };
    assert_eq!(p.amount(1000), dec("10.00"));
    // 1001 units fall in the second tier: all at 0.008, plus its flat fee.
    assert_eq!(p.amount(1001), dec("10.51"));
    assert_eq!(p.amount(9000), dec("45.00"));
}

#[test]
fn packages_are_counted_per_started_package() {
    let p = OveragePricing::Package {
        package_size: 100,
        package_price: dec("5"),
    };
    assert_eq!(p.lines(1)[0].quantity, 1);
    assert_eq!(p.lines(100)[0].quantity, 1);
    assert_eq!(p.lines(101)[0].quantity, 2);
    assert_eq!(p.amount(250), dec("15.00"));
}

#[test]
fn no_overage_prints_no_line_and_costs_nothing() {
    for p in [
        OveragePricing::per_unit(dec("0.5")),
        OveragePricing::Graduated {
            tiers: three_tiers(),
        },
        OveragePricing::Volume {
            tiers: three_tiers(),
        },
    ] {
        assert!(p.lines(0).is_empty());
        assert_eq!(p.amount(0), Decimal::ZERO);
    }
}

#[test]
fn malformed_tables_are_refused_with_the_field_that_is_wrong() {
    let refuse = |tiers: Vec<Tier>| {
        OveragePricing::Graduated { tiers }
            .validate()
            .unwrap_err()
            .field
    };
    assert_eq!(refuse(vec![]), "tiers");
    assert_eq!(
        refuse(vec![tier(Some(10), "1", None)]),
        "tiers[0].up_to",
        "no open last tier"
    );
    assert_eq!(
        refuse(vec![tier(None, "1", None), tier(None, "1", None)]),
        "tiers[0].up_to"
    );
    assert_eq!(
        refuse(vec![
            tier(Some(10), "1", None),
            tier(Some(10), "1", None),
            tier(None, "1", None)
        ]),
        "tiers[1].up_to",
        "not ascending"
    );
    assert_eq!(
        refuse(vec![tier(Some(0), "1", None), tier(None, "1", None)]),
        "tiers[0].up_to"
    );
    assert_eq!(
        refuse(vec![tier(None, "-0.01", None)]),
        "tiers[0].unit_price"
    );
    assert_eq!(
        refuse(vec![tier(None, "0.0000001", None)]),
        "tiers[0].unit_price"
    );
    assert_eq!(
        refuse(vec![tier(None, "1", Some("-1"))]),
        "tiers[0].flat_fee"
    );
    let empty_package = OveragePricing::Package {
        package_size: 0,
        package_price: dec("1"),
    };
    assert_eq!(empty_package.validate().unwrap_err().field, "package_size");
    assert!(OveragePricing::Volume {
        tiers: three_tiers()
    }
    .validate()
    .is_ok());
}

#[test]
fn the_stored_form_names_the_model_and_keeps_prices_as_strings() {
    let p = OveragePricing::Graduated {
        tiers: vec![
            tier(Some(10), "0.25", None),
            tier(None, "0.1", Some("1.00")),
        ],
    };
    let v = serde_json::to_value(&p).unwrap();
    assert_eq!(v["model"], "graduated");
    assert_eq!(v["tiers"][0]["unit_price"], "0.25");
    assert_eq!(v["tiers"][0].get("flat_fee"), None);
    assert_eq!(v["tiers"][1]["up_to"], serde_json::Value::Null);
    let back: OveragePricing = serde_json::from_value(v).unwrap();
    assert_eq!(back, p);
}

#[test]
fn converted_prices_keep_six_decimals() {
    let p = OveragePricing::per_unit(dec("0.001234")).converted(dec("3.6725"));
    assert_eq!(p, OveragePricing::per_unit(dec("0.004532")));
}

/// A random valid tier table: 1–6 tiers, ascending bounds, prices with up to 6 decimals.
fn tiers_strategy() -> impl Strategy<Value = Vec<Tier>> {
    prop::collection::vec(
        (
            1u64..5_000,
            0i64..5_000_000,
            prop::option::of(0i64..100_000),
        ),
        1..6,
    )
    .prop_map(|raw| {
        let mut bound = 0u64;
        let n = raw.len();
        raw.into_iter()
            .enumerate()
            .map(|(i, (step, micros, fee_cents))| {
                bound += step;
                Tier {
                    up_to: (i + 1 < n).then_some(bound),
                    unit_price: Decimal::new(micros, 6),
                    flat_fee: fee_cents.map(|c| Decimal::new(c, 2)),
                }
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_line_adds_up_and_graduated_amount_is_the_sum_of_its_tiers(
        tiers in tiers_strategy(),
        units in 0u64..40_000,
    ) {
        let p = OveragePricing::Graduated { tiers: tiers.clone() };
        prop_assert!(p.validate().is_ok());
        let lines = p.lines(units);
        for l in &lines {
            prop_assert_eq!(l.amount, line_amount(Decimal::from(l.quantity), l.unit_price));
            prop_assert_eq!(l.amount.scale(), 2);
        }
        let tier_units: u64 = lines
            .iter()
            .filter(|l| matches!(l.part, LinePart::Tier { .. }))
            .map(|l| l.quantity)
            .sum();
        prop_assert_eq!(tier_units, units);
        // Unit by unit, each at its own tier's price, rounded once per tier line.
        let mut by_hand = Decimal::ZERO;
        let mut below = 0u64;
        for t in &tiers {
            let top = t.up_to.map_or(units, |u| u.min(units));
            if top > below {
                by_hand += round_money(Decimal::from(top - below) * t.unit_price);
                by_hand += t.flat_fee.map(round_money).unwrap_or_default();
            }
            below = t.up_to.unwrap_or(u64::MAX);
            if units <= below { break; }
        }
        prop_assert_eq!(p.amount(units), by_hand);
    }

    #[test]
    fn one_tier_prices_the_same_in_every_model(
        micros in 0i64..5_000_000,
        fee in prop::option::of(0i64..100_000),
        units in 1u64..100_000,
    ) {
        let only = vec![Tier {
            up_to: None,
            unit_price: Decimal::new(micros, 6),
            flat_fee: fee.map(|c| Decimal::new(c, 2)),
        }];
        let graduated = OveragePricing::Graduated { tiers: only.clone() }.amount(units);
        let volume = OveragePricing::Volume { tiers: only }.amount(units);
        prop_assert_eq!(graduated, volume);
        let fee = fee.map(|c| Decimal::new(c, 2)).unwrap_or_default();
        let per_unit = OveragePricing::per_unit(Decimal::new(micros, 6)).amount(units);
        prop_assert_eq!(graduated, per_unit + fee);
    }

    #[test]
    fn volume_prints_one_tier_of_all_units(tiers in tiers_strategy(), units in 1u64..40_000) {
        let lines = OveragePricing::Volume { tiers }.lines(units);
        let tier_lines: Vec<_> = lines.iter().filter(|l| matches!(l.part, LinePart::Tier { .. })).collect();
        prop_assert_eq!(tier_lines.len(), 1);
        prop_assert_eq!(tier_lines[0].quantity, units);
    }

    #[test]
    fn a_package_amount_is_started_packages_times_the_price(
        size in 1u64..10_000,
        cents in 0i64..1_000_000,
        units in 0u64..1_000_000,
    ) {
        let price = Decimal::new(cents, 2);
        let p = OveragePricing::Package { package_size: size, package_price: price };
        let packages = units.div_ceil(size);
        prop_assert_eq!(p.amount(units), round_money(Decimal::from(packages) * price));
    }

    #[test]
    fn graduated_amount_never_falls_as_units_grow(tiers in tiers_strategy(), units in 0u64..40_000) {
        let p = OveragePricing::Graduated { tiers };
        prop_assert!(p.amount(units + 1) >= p.amount(units));
    }
}
