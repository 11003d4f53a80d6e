//! Money: exact decimals, rounded to the currency's minor unit once per line, and split so the
//! parts add up to the whole exactly.
//!
//! The rules (docs/metering.md, "Rounding"): amounts are computed exactly and rounded only when a
//! line is made, half away from zero (0.005 → 0.01, −0.005 → −0.01) to the currency's minor unit;
//! a rounded amount shared among several parties is split by the largest-remainder method, so the
//! parts are each in whole minor units and always sum to the amount.

use rust_decimal::{Decimal, RoundingStrategy};

/// The number of decimal places of a currency's minor unit (ISO 4217): 0 for the yen and the won,
/// 3 for the dinars, 2 for every other currency Commons expects (GBP, EUR, USD, ...).
pub fn minor_unit_places(currency: &str) -> u32 {
    match currency {
        "JPY" | "KRW" | "ISK" | "CLP" | "VND" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        _ => 2,
    }
}

/// `amount` rounded to `places` decimal places, half away from zero, and written with exactly
/// that many (10 is 10.00).
pub fn round(amount: Decimal, places: u32) -> Decimal {
    let mut rounded = amount.round_dp_with_strategy(places, RoundingStrategy::MidpointAwayFromZero);
    rounded.rescale(places);
    rounded
}

/// Splits `total` (already in whole units of `places` decimal places) in proportion to `weights`
/// (non-negative, not all zero) by the largest-remainder method: each part is its exact share
/// rounded towards zero to whole units, and the units left over go one each to the parts with the
/// largest remainders (earlier parts first on a tie). The parts sum to `total` exactly. All-zero
/// or empty weights give `None`.
pub fn split(total: Decimal, weights: &[Decimal], places: u32) -> Option<Vec<Decimal>> {
    let sum: Decimal = weights.iter().copied().sum();
    if weights.is_empty() || sum <= Decimal::ZERO || weights.iter().any(|w| *w < Decimal::ZERO) {
        return None;
    }
    let unit = Decimal::new(1, places);
    let exact: Vec<Decimal> = weights.iter().map(|w| total * *w / sum).collect();
    let mut parts: Vec<Decimal> =
        exact.iter().map(|e| e.round_dp_with_strategy(places, RoundingStrategy::ToZero)).collect();
    let assigned: Decimal = parts.iter().copied().sum();
    // Whole units still to hand out (negative totals hand out negative units).
    let left = ((total - assigned) / unit).round();
    let step = if left < Decimal::ZERO { -unit } else { unit };
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by(|&a, &b| (exact[b] - parts[b]).abs().cmp(&(exact[a] - parts[a]).abs()).then(a.cmp(&b)));
    let n = usize::try_from(left.abs().mantissa()).ok()?;
    for &i in order.iter().cycle().take(n) {
        parts[i] += step;
    }
    Some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::dec;

    #[test]
    fn rounding_is_half_away_from_zero_once() {
        let cases = [
            (dec!(0.005), 2, dec!(0.01)),
            (dec!(0.0049999), 2, dec!(0.00)),
            (dec!(-0.005), 2, dec!(-0.01)),
            (dec!(12.344999), 2, dec!(12.34)),
            (dec!(12.345), 2, dec!(12.35)),
            (dec!(99.5), 0, dec!(100)),
        ];
        for (amount, places, want) in cases {
            assert_eq!(round(amount, places), want, "{amount}");
        }
        assert_eq!(minor_unit_places("GBP"), 2);
        assert_eq!(minor_unit_places("JPY"), 0);
        assert_eq!(round(dec!(10), 2).to_string(), "10.00", "written in the minor unit");
    }

    #[test]
    fn splits_add_up_exactly_by_largest_remainder() {
        let cases: Vec<(Decimal, Vec<Decimal>, Vec<Decimal>)> = vec![
            (dec!(100.00), vec![dec!(1), dec!(1), dec!(1)], vec![dec!(33.34), dec!(33.33), dec!(33.33)]),
            (dec!(0.01), vec![dec!(1), dec!(1)], vec![dec!(0.01), dec!(0.00)]),
            (dec!(10.00), vec![dec!(1), dec!(3)], vec![dec!(2.50), dec!(7.50)]),
            (
                dec!(1.00),
                vec![dec!(1), dec!(1), dec!(1), dec!(1), dec!(1), dec!(1), dec!(1)],
                vec![dec!(0.15), dec!(0.15), dec!(0.14), dec!(0.14), dec!(0.14), dec!(0.14), dec!(0.14)],
            ),
            (dec!(-100.00), vec![dec!(1), dec!(1), dec!(1)], vec![dec!(-33.34), dec!(-33.33), dec!(-33.33)]),
            (dec!(5.00), vec![dec!(0), dec!(2)], vec![dec!(0.00), dec!(5.00)]),
            (dec!(7.77), vec![dec!(2), dec!(1), dec!(7)], vec![dec!(1.55), dec!(0.78), dec!(5.44)]),
        ];
        for (total, weights, want) in cases {
            let parts = split(total, &weights, 2).unwrap();
            assert_eq!(parts, want, "{total} by {weights:?}");
            assert_eq!(parts.iter().copied().sum::<Decimal>(), total);
        }
        assert_eq!(split(dec!(1), &[], 2), None);
        assert_eq!(split(dec!(1), &[dec!(0)], 2), None);
        assert_eq!(split(dec!(1), &[dec!(-1), dec!(2)], 2), None);
    }
}
