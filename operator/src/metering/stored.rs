//! Closed periods as the ledger stores them (pure, but for reading a period's tariff): charge
//! lines with amounts in units of 10^-9 of the currency, and the rate cards and VAT rates a month
//! was closed with, as the exact decimal text of each.

use jiff::Timestamp;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use super::charges::{Charge, ChargeLine, Grain};
use super::rating::{Card, Tariff, VatRate};
use crate::error::{Error, Result};
use crate::ledger::{Ledger, StoredCard, StoredLine, StoredVat};

/// An amount as stored: units of 10^-9 of the currency, exactly.
pub(crate) fn nanos(amount: Decimal) -> Result<i64> {
    (amount * Decimal::from(1_000_000_000))
        .to_i64()
        .filter(|_| amount.scale() <= 9)
        .ok_or_else(|| Error::Invalid(format!("amount {amount} cannot be stored exactly")))
}

pub(crate) fn to_stored(lines: &[ChargeLine]) -> Result<Vec<StoredLine>> {
    lines
        .iter()
        .zip(1..)
        .map(|(l, line_no)| {
            Ok(StoredLine {
                line_no,
                corrects: l.corrects.clone(),
                tenancy: l.grain.tenancy.clone(),
                namespace: l.grain.namespace.clone(),
                hosted_service: l.grain.hosted_service.clone(),
                organisation: l.grain.organisation.clone(),
                organisation_name: l.grain.organisation_name.clone(),
                sector: l.grain.sector.clone(),
                cost_centre: l.grain.cost_centre.clone(),
                charge: l.charge.to_string(),
                quantity: l.quantity.map(|q| q.to_string()).unwrap_or_default(),
                amount_nanos: nanos(l.amount)?,
                rate_card: l.rate_card.clone(),
            })
        })
        .collect()
}

/// A stored line, its amount in the currency's minor unit (`places` decimal places).
pub(crate) fn from_stored(l: &StoredLine, places: u32) -> Result<ChargeLine> {
    let bad = |what: &str| Error::Invalid(format!("charge line {}: {what}", l.line_no));
    Ok(ChargeLine {
        grain: Grain {
            tenancy: l.tenancy.clone(),
            namespace: l.namespace.clone(),
            hosted_service: l.hosted_service.clone(),
            organisation: l.organisation.clone(),
            organisation_name: l.organisation_name.clone(),
            sector: l.sector.clone(),
            cost_centre: l.cost_centre.clone(),
        },
        charge: Charge::parse(&l.charge).ok_or_else(|| bad("unknown charge"))?,
        quantity: match l.quantity.as_str() {
            "" => None,
            q => Some(q.parse().map_err(|_| bad("quantity is not a decimal"))?),
        },
        amount: {
            let mut a = Decimal::new(l.amount_nanos, 9);
            a.rescale(places);
            a
        },
        rate_card: l.rate_card.clone(),
        corrects: l.corrects.clone(),
    })
}

pub(crate) fn cards_to_stored(cards: &[Card]) -> Vec<StoredCard> {
    cards
        .iter()
        .map(|c| StoredCard {
            name: c.name.clone(),
            effective_from_ms: c.effective_from.as_millisecond(),
            currency: c.currency.clone(),
            cpu: c.cpu.to_string(),
            memory: c.memory.to_string(),
            storage: c.storage.to_string(),
            load_balancer: c.load_balancer.to_string(),
            overhead_percent: c.overhead_percent.to_string(),
        })
        .collect()
}

pub(crate) fn cards_from_stored(cards: &[StoredCard]) -> Result<Vec<Card>> {
    cards
        .iter()
        .map(|c| {
            let d = |s: &str| {
                s.parse::<Decimal>()
                    .map_err(|_| Error::Invalid(format!("stored rate card {}: {s:?}", c.name)))
            };
            Ok(Card {
                name: c.name.clone(),
                effective_from: Timestamp::from_millisecond(c.effective_from_ms)
                    .map_err(|_| Error::Invalid(format!("stored rate card {}: effectiveFrom", c.name)))?,
                currency: c.currency.clone(),
                cpu: d(&c.cpu)?,
                memory: d(&c.memory)?,
                storage: d(&c.storage)?,
                load_balancer: d(&c.load_balancer)?,
                overhead_percent: d(&c.overhead_percent)?,
            })
        })
        .collect()
}

pub(crate) fn vat_to_stored(rates: &[VatRate]) -> Vec<StoredVat> {
    rates
        .iter()
        .map(|v| StoredVat {
            name: v.name.clone(),
            effective_from_ms: v.effective_from.as_millisecond(),
            percent: v.percent.to_string(),
        })
        .collect()
}

pub(crate) fn vat_from_stored(rates: &[StoredVat]) -> Result<Vec<VatRate>> {
    rates
        .iter()
        .map(|v| {
            let bad = || Error::Invalid(format!("stored VAT rate {}", v.name));
            Ok(VatRate {
                name: v.name.clone(),
                effective_from: Timestamp::from_millisecond(v.effective_from_ms).map_err(|_| bad())?,
                percent: v.percent.parse().map_err(|_| bad())?,
            })
        })
        .collect()
}

/// The rate cards and VAT rates closed month `period` was closed with.
pub async fn closed_tariff(ledger: &Ledger, period: &str) -> Result<Tariff> {
    Ok(Tariff {
        cards: cards_from_stored(&ledger.period_cards(period).await?)?,
        vat: vat_from_stored(&ledger.period_vat_rates(period).await?)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::dec;

    #[test]
    fn lines_and_cards_survive_the_store_exactly() {
        let line = ChargeLine {
            grain: Grain { tenancy: "t".into(), namespace: "t-a".into(), ..Grain::default() },
            charge: Charge::Memory,
            quantity: Some(dec!(0.0032486111111111111111111111)),
            amount: dec!(-12.34),
            rate_card: "standard".into(),
            corrects: "2026-10".into(),
        };
        let stored = to_stored(std::slice::from_ref(&line)).unwrap();
        assert_eq!((stored[0].line_no, stored[0].amount_nanos), (1, -12_340_000_000));
        assert_eq!(from_stored(&stored[0], 2).unwrap(), line);
        assert_eq!(from_stored(&stored[0], 2).unwrap().amount.to_string(), "-12.34");
        let card = Card {
            name: "c".into(),
            effective_from: "2026-01-01T00:00:00Z".parse().unwrap(),
            currency: "GBP".into(),
            cpu: dec!(0.0345),
            memory: dec!(0.0046),
            storage: dec!(0),
            load_balancer: dec!(0.025),
            overhead_percent: dec!(12.5),
        };
        assert_eq!(cards_from_stored(&cards_to_stored(std::slice::from_ref(&card))).unwrap(), vec![card]);
        assert!(nanos(dec!(0.0000000001)).is_err(), "finer than 10^-9 cannot be stored exactly");
    }
}
