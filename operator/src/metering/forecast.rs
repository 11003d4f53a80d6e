//! Forecasts (pure): what a quota or a HostedService would cost for a whole month if all of it
//! were held throughout, priced by the same code as bills (`charges`): the cards in force over
//! that month (a scheduled price change included), each line rounded once.

use commons_crds::hosted_service::HostedServiceSpec;
use commons_crds::tenancy::TenancyQuota;
use jiff::Timestamp;

use super::charges::{ChargeError, ChargeLine, Grain};
use super::periods::Month;
use super::rater::Rater;
#[cfg(test)]
use super::rating::Card;
use super::rating::Tariff;
use crate::ledger::{Attribution, Held, Interval, Kind};
use crate::quantity::Milli;

/// Why a forecast cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ForecastError {
    /// A quantity that does not parse.
    #[error("{field}: {value:?} is not a Kubernetes quantity")]
    Quantity {
        /// The field, for example `spec.quota.cpu`.
        field: String,
        /// What it holds.
        value: String,
    },
    /// Pricing failed.
    #[error(transparent)]
    Charge(#[from] ChargeError),
}

fn milli(field: &str, value: Option<&String>) -> Result<i64, ForecastError> {
    match value {
        None => Ok(0),
        Some(v) => v
            .parse::<Milli>()
            .ok()
            .and_then(|m| i64::try_from(m.0).ok())
            .ok_or_else(|| ForecastError::Quantity { field: field.into(), value: v.clone() }),
    }
}

/// What a tenancy's quota holds when full.
pub fn of_quota(q: &TenancyQuota, field: &str) -> Result<Held, ForecastError> {
    Ok(Held {
        cpu_milli: milli(&format!("{field}.cpu"), q.cpu.as_ref())?,
        memory_milli: milli(&format!("{field}.memory"), q.memory.as_ref())?,
        storage_milli: milli(&format!("{field}.storage"), q.storage.as_ref())?,
        load_balancer_milli: i64::from(q.load_balancers.unwrap_or(0).max(0)) * 1000,
        ..Held::default()
    })
}

/// What a HostedService holds: its requests times its replicas.
pub fn of_service(s: &HostedServiceSpec) -> Result<Held, ForecastError> {
    let requests = s.resources.as_ref().and_then(|r| r.requests.as_ref());
    let replicas = i64::from(s.replicas.max(0));
    Ok(Held {
        cpu_milli: milli("spec.resources.requests.cpu", requests.and_then(|r| r.cpu.as_ref()))? * replicas,
        memory_milli: milli("spec.resources.requests.memory", requests.and_then(|r| r.memory.as_ref()))?
            * replicas,
        ..Held::default()
    })
}

/// The month's charge lines for holding `held` all of `month`.
pub fn month_cost(held: Held, month: &Month, tariff: &Tariff) -> Result<Vec<ChargeLine>, ForecastError> {
    let mut rater = Rater::new(month.from, month.until, tariff.clone(), None)?;
    let interval = Interval {
        key: "forecast".into(),
        kind: Kind::Pod,
        uid: "forecast".into(),
        namespace: String::new(),
        name: String::new(),
        attribution: Attribution::default(),
        held,
        start_ms: month.from.as_millisecond(),
        end_ms: Some(month.until.as_millisecond()),
        estimated: false,
        recorded_ms: 0,
        end_recorded_ms: None,
    };
    rater.add(&interval)?;
    Ok(rater.finish().into_iter().map(|l| ChargeLine { grain: Grain::default(), ..l }).collect())
}

/// The month a forecast is for by default: the next calendar month after `now`.
pub fn next_month(now: Timestamp) -> Month {
    Month::of(now).next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metering::charges::Charge;
    use rust_decimal::dec;

    #[test]
    fn a_full_quota_for_a_month_is_priced_line_by_line() {
        let card = Card {
            name: "standard".into(),
            effective_from: "2026-01-01T00:00:00Z".parse().unwrap(),
            currency: "GBP".into(),
            cpu: dec!(0.0345),
            memory: dec!(0.0046),
            storage: dec!(0.00014),
            load_balancer: dec!(0.025),
            overhead_percent: dec!(12.5),
        };
        let q = TenancyQuota {
            cpu: Some("16".into()),
            memory: Some("64Gi".into()),
            storage: Some("500Gi".into()),
            pods: Some(200),
            load_balancers: Some(2),
        };
        let held = of_quota(&q, "spec.quota").unwrap();
        let lines =
            month_cost(held, &Month::parse("2026-11").unwrap(), &Tariff::of_cards(vec![card])).unwrap();
        let amount = |c: Charge| lines.iter().find(|l| l.charge == c).unwrap().amount;
        // November has 720 hours.
        assert_eq!(amount(Charge::Cpu), dec!(397.44), "16 × 720 × 0.0345");
        assert_eq!(amount(Charge::Memory), dec!(211.97), "64 × 720 × 0.0046 = 211.968");
        assert_eq!(amount(Charge::Storage), dec!(50.40), "500 × 720 × 0.00014");
        assert_eq!(amount(Charge::LoadBalancer), dec!(36.00), "2 × 720 × 0.025");
        assert_eq!(amount(Charge::PlatformOverhead), dec!(86.98), "12.5% of 695.808");
        let bad = TenancyQuota { cpu: Some("lots".into()), ..TenancyQuota::default() };
        assert!(of_quota(&bad, "spec.quota").unwrap_err().to_string().contains("spec.quota.cpu"));
    }
}
