//! Budgets: each tenancy's spend this month and its month-end projection (from the ledger, priced
//! like bills), weighed against `spec.budget`. `figures` and `assess` are pure; `run` keeps the
//! figures fresh and tells the Tenancy controller which tenancies' figures changed, so the
//! BudgetExceeded condition, the status and the threshold Events come from one place.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use commons_crds::Tenancy;
use commons_crds::tenancy::{Budget, BudgetStatus};
use futures::StreamExt;
use jiff::Timestamp;
use kube::Client;
use kube::runtime::reflector::ObjectRef;
use rust_decimal::Decimal;

use super::charges::ChargeLine;
use super::periods::{self, Month};
use super::rater::Rater;
use super::rating::Tariff;
use crate::ledger::{Kind, Ledger};

/// A tenancy's spend this month.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Figures {
    /// The month, `YYYY-MM`.
    pub period: String,
    /// Spend so far (charge lines, each rounded once; corrections due included).
    pub month_to_date: Decimal,
    /// Spend by the month's end if what it holds now is held until then.
    pub projected: Decimal,
    /// Their currency.
    pub currency: String,
}

/// Per tenancy: spend so far from this month's lines, and the projection from the rest of the month
/// priced for what is open now.
pub fn figures(
    period: &str,
    currency: &str,
    month_to_date: &[ChargeLine],
    rest_of_month: &[ChargeLine],
) -> BTreeMap<String, Figures> {
    let mut sums: BTreeMap<String, (Decimal, Decimal)> = BTreeMap::new();
    // Lines charged to no tenancy (unallocated capacity) are nobody's budget.
    for l in month_to_date.iter().filter(|l| !l.grain.tenancy.is_empty()) {
        let s = sums.entry(l.grain.tenancy.clone()).or_default();
        s.0 += l.amount;
        s.1 += l.amount;
    }
    for l in rest_of_month.iter().filter(|l| !l.grain.tenancy.is_empty()) {
        sums.entry(l.grain.tenancy.clone()).or_default().1 += l.amount;
    }
    sums.into_iter()
        .map(|(tenancy, (month_to_date, projected))| {
            let f = Figures {
                period: period.to_owned(),
                month_to_date,
                projected,
                currency: currency.to_owned(),
            };
            (tenancy, f)
        })
        .collect()
}

/// The BudgetExceeded condition a tenancy's figures give: its status (`True`, `False` or
/// `Unknown`), reason and message, and the budget status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assessment {
    /// `True`, `False` or `Unknown`.
    pub status: &'static str,
    /// Why.
    pub reason: &'static str,
    /// For people.
    pub message: String,
    /// What status.budget says.
    pub budget: Option<BudgetStatus>,
}

impl Assessment {
    /// Before the ledger has been measured.
    pub fn not_measured() -> Assessment {
        Assessment {
            status: "Unknown",
            reason: "NotMeasured",
            message: "this month's spend has not been measured yet (it needs the ledger and a rate card)"
                .into(),
            budget: None,
        }
    }
}

/// What a tenancy's status said of its budget.
pub fn previous(status: Option<&commons_crds::TenancyStatus>) -> Option<Assessment> {
    let status = status?;
    let c = status.conditions.iter().find(|c| c.type_ == "BudgetExceeded")?;
    let (state, reason) = match (c.status.as_str(), c.reason.as_str()) {
        ("True", "Exceeded") => ("True", "Exceeded"),
        ("False", "ProjectedToExceed") => ("False", "ProjectedToExceed"),
        ("False", "WithinBudget") => ("False", "WithinBudget"),
        ("Unknown", "CurrencyMismatch") => ("Unknown", "CurrencyMismatch"),
        ("Unknown", "NotMeasured") => ("Unknown", "NotMeasured"),
        _ => return None,
    };
    Some(Assessment { status: state, reason, message: c.message.clone(), budget: status.budget.clone() })
}

/// The status keeps what it said while the condition, the month and the thresholds reached are the
/// same and spend and projection have each moved by less than 1% of the budget: the exact figures
/// are in `commons report` and the metrics, and a status is not rewritten for every penny.
pub fn settled(now: Assessment, previous: Option<Assessment>, budget: &Budget) -> Assessment {
    let Some(prev) = previous else { return now };
    let (Some(n), Some(p)) = (&now.budget, &prev.budget) else { return now };
    let step = budget.monthly_amount.value() / Decimal::from(100);
    let moved = |a: &str, b: &str| match (a.parse::<Decimal>(), b.parse::<Decimal>()) {
        (Ok(a), Ok(b)) => (a - b).abs() >= step,
        _ => true,
    };
    let same = now.status == prev.status
        && now.reason == prev.reason
        && n.period == p.period
        && n.currency == p.currency
        && n.thresholds_reached == p.thresholds_reached
        && !moved(&n.month_to_date, &p.month_to_date)
        && !moved(&n.projected, &p.projected);
    if same { prev } else { now }
}

/// Weighs `figures` against `budget`: exceeded once spend reaches it; projected to exceed when the
/// month-end projection does; a currency other than the rate cards' cannot be weighed.
pub fn assess(
    budget: &Budget,
    figures: Option<&Figures>,
    period: &str,
    card_currency: Option<&str>,
) -> Assessment {
    let limit = budget.monthly_amount.value();
    if let Some(c) = card_currency.filter(|c| *c != budget.currency) {
        return Assessment {
            status: "Unknown",
            reason: "CurrencyMismatch",
            message: format!(
                "spec.budget.currency is {} but the rate cards charge in {c}: the budget cannot be weighed",
                budget.currency
            ),
            budget: None,
        };
    }
    let zero = Figures {
        period: period.to_owned(),
        month_to_date: Decimal::ZERO,
        projected: Decimal::ZERO,
        currency: budget.currency.clone(),
    };
    let f = figures.unwrap_or(&zero);
    let percent =
        |d: Decimal| if limit.is_zero() { Decimal::from(100) } else { d * Decimal::from(100) / limit };
    let spent_pct = percent(f.month_to_date);
    let mut reached: Vec<i32> = budget
        .alert_thresholds
        .iter()
        .copied()
        .filter(|t| f.month_to_date > Decimal::ZERO && spent_pct >= Decimal::from(*t))
        .collect();
    reached.sort_unstable();
    reached.dedup();
    let status = BudgetStatus {
        period: f.period.clone(),
        month_to_date: f.month_to_date.to_string(),
        projected: f.projected.to_string(),
        currency: f.currency.clone(),
        thresholds_reached: reached,
    };
    let (state, reason, message) = if f.month_to_date >= limit && f.month_to_date > Decimal::ZERO {
        (
            "True",
            "Exceeded",
            format!(
                "{} spent this month, {}% of the budget of {}",
                f.month_to_date,
                spent_pct.round_dp(1),
                limit
            ),
        )
    } else if f.projected > limit {
        (
            "False",
            "ProjectedToExceed",
            format!(
                "{} spent this month; {} by the month's end at the current rate, over the budget of {}",
                f.month_to_date, f.projected, limit
            ),
        )
    } else {
        (
            "False",
            "WithinBudget",
            format!(
                "{} spent this month; {} by the month's end at the current rate, within the budget of {}",
                f.month_to_date, f.projected, limit
            ),
        )
    };
    Assessment {
        status: state,
        reason,
        message: format!("{message} {}", budget.currency),
        budget: Some(status),
    }
}

/// The latest figures of every tenancy, shared with the Tenancy controller.
#[derive(Debug, Default)]
pub struct Budgets {
    inner: Mutex<(BTreeMap<String, Figures>, Option<String>)>,
}

impl Budgets {
    /// A tenancy's figures, if the ledger has any.
    pub fn of(&self, tenancy: &str) -> Option<Figures> {
        self.inner.lock().ok().and_then(|g| g.0.get(tenancy).cloned())
    }

    /// The rate cards' currency, once known.
    pub fn currency(&self) -> Option<String> {
        self.inner.lock().ok().and_then(|g| g.1.clone())
    }

    /// Replaces the figures; the tenancies whose figures changed.
    fn replace(&self, next: BTreeMap<String, Figures>, currency: String) -> Vec<String> {
        let Ok(mut g) = self.inner.lock() else { return Vec::new() };
        let mut changed: Vec<String> =
            next.iter().filter(|(t, f)| g.0.get(*t) != Some(*f)).map(|(t, _)| t.clone()).collect();
        changed.extend(g.0.keys().filter(|t| !next.contains_key(*t)).cloned());
        let currency_changed = g.1.as_deref() != Some(currency.as_str());
        g.0 = next;
        g.1 = Some(currency);
        if currency_changed {
            changed.extend(g.0.keys().cloned());
        }
        changed
    }
}

/// Per-tenancy gauges, labelled with organisation, sector and cost centre: spend this month, its
/// projection, and what is held now. (Gauges, not counters: a month's spend starts again each
/// month and a correction can lower it, which a Prometheus counter may not do.)
#[derive(Clone, Debug)]
pub struct SpendMetrics {
    month_to_date: prometheus::GaugeVec,
    projected: prometheus::GaugeVec,
    held: prometheus::GaugeVec,
}

/// Who each tenancy is (as last recorded) and what it holds now.
type Holdings = (BTreeMap<String, crate::ledger::Attribution>, BTreeMap<String, crate::ledger::Held>);

impl SpendMetrics {
    /// Creates and registers the gauges.
    pub fn new(registry: &prometheus::Registry) -> prometheus::Result<SpendMetrics> {
        let labels = ["tenancy", "organisation", "sector", "cost_centre", "currency"];
        let month_to_date = prometheus::GaugeVec::new(
            prometheus::Opts::new(
                "tenancy_spend_month_to_date",
                "Spend this month so far, from the ledger (charge lines, each rounded once).",
            ),
            &labels,
        )?;
        let projected = prometheus::GaugeVec::new(
            prometheus::Opts::new(
                "tenancy_spend_projected",
                "Spend by the month's end if what the tenancy holds now is held until then.",
            ),
            &labels,
        )?;
        let held = prometheus::GaugeVec::new(
            prometheus::Opts::new(
                "tenancy_allocation",
                "What the tenancy holds now: CPU cores, memory and storage GiB, load balancers.",
            ),
            &["tenancy", "organisation", "sector", "cost_centre", "resource"],
        )?;
        registry.register(Box::new(month_to_date.clone()))?;
        registry.register(Box::new(projected.clone()))?;
        registry.register(Box::new(held.clone()))?;
        Ok(SpendMetrics { month_to_date, projected, held })
    }

    fn set(&self, figures: &BTreeMap<String, Figures>, (who, held): &Holdings) {
        use rust_decimal::prelude::ToPrimitive;
        self.month_to_date.reset();
        self.projected.reset();
        self.held.reset();
        let empty = crate::ledger::Attribution::default();
        for (t, f) in figures {
            let a = who.get(t).unwrap_or(&empty);
            let labels = [
                t.as_str(),
                a.organisation.as_str(),
                a.sector.as_str(),
                a.cost_centre.as_str(),
                f.currency.as_str(),
            ];
            self.month_to_date.with_label_values(&labels).set(f.month_to_date.to_f64().unwrap_or(0.0));
            self.projected.with_label_values(&labels).set(f.projected.to_f64().unwrap_or(0.0));
        }
        let units = |milli: i64, per: i64| Decimal::from(milli) / Decimal::from(per);
        for (t, h) in held {
            let a = who.get(t).unwrap_or(&empty);
            for (resource, value) in [
                ("cpu", units(h.cpu_milli, 1000)),
                ("memory", units(h.memory_milli, 1000 << 30)),
                ("storage", units(h.storage_milli, 1000 << 30)),
                ("load_balancers", units(h.load_balancer_milli, 1000)),
            ] {
                let labels = [
                    t.as_str(),
                    a.organisation.as_str(),
                    a.sector.as_str(),
                    a.cost_centre.as_str(),
                    resource,
                ];
                self.held.with_label_values(&labels).set(value.to_f64().unwrap_or(0.0));
            }
        }
    }
}

/// This month's figures for every tenancy in the ledger at `now`, and who each tenancy is and
/// what it holds now.
pub async fn measure(
    ledger: &Ledger,
    tariff: &Tariff,
    now: Timestamp,
) -> crate::error::Result<(BTreeMap<String, Figures>, Holdings)> {
    let month = Month::of(now);
    let (spent, _) = periods::lines(ledger, &month, now, tariff).await?;
    // The rest of the month, if what is open now stays open: shares of shared services included.
    let open = ledger.open_intervals().await?;
    let context: Vec<_> = open
        .iter()
        .filter(|i| matches!(i.kind, Kind::Node | Kind::Share | Kind::ProviderShare))
        .cloned()
        .collect();
    let mut rest = Rater::new(now, month.until, tariff.clone(), None)?.with_context(&context)?;
    let mut who = BTreeMap::new();
    let mut held: BTreeMap<String, crate::ledger::Held> = BTreeMap::new();
    for i in open {
        rest.add(&i)?;
        if !matches!(i.kind, Kind::Pod | Kind::Claim | Kind::LoadBalancer) {
            continue;
        }
        let h = held.entry(i.attribution.tenancy.clone()).or_default();
        h.cpu_milli += i.held.cpu_milli;
        h.memory_milli += i.held.memory_milli;
        h.storage_milli += i.held.storage_milli;
        h.load_balancer_milli += i.held.load_balancer_milli;
        who.insert(i.attribution.tenancy.clone(), i.attribution);
    }
    let currency = tariff.cards.first().map(|c| c.currency.clone()).unwrap_or_default();
    Ok((figures(&month.name, &currency, &spent, &rest.finish()), (who, held)))
}

/// Every `every`, measures and tells the Tenancy controller (through `touch`) which tenancies'
/// figures changed, until `stop` resolves.
pub async fn run(
    client: Client,
    ledger: Ledger,
    budgets: Arc<Budgets>,
    touch: futures::channel::mpsc::UnboundedSender<ObjectRef<Tenancy>>,
    (every, metrics): (Duration, SpendMetrics),
    stop: impl std::future::Future<Output = ()> + Send,
) {
    let mut stop = std::pin::pin!(stop);
    let mut ticks = futures::stream::unfold(tokio::time::interval(every), |mut i| async move {
        i.tick().await;
        Some(((), i))
    })
    .boxed();
    loop {
        tokio::select! {
            () = &mut stop => return,
            _ = ticks.next() => {}
        }
        let tariff = match crate::report_cmd::tariff_in(&client).await {
            Ok(t) if !t.cards.is_empty() => t,
            Ok(_) => continue,
            Err(e) => {
                tracing::debug!(error = %e, "budgets: cannot list rate cards");
                continue;
            }
        };
        match measure(&ledger, &tariff, Timestamp::now()).await {
            Ok((figures, holdings)) => {
                metrics.set(&figures, &holdings);
                let currency = tariff.cards[0].currency.clone();
                for t in budgets.replace(figures, currency) {
                    let _ = touch.unbounded_send(ObjectRef::new(&t));
                }
            }
            Err(e) => tracing::warn!(error = %e, "budgets: this month's spend cannot be measured"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metering::charges::{Charge, Grain};
    use commons_crds::common::Amount;
    use rust_decimal::dec;

    fn line(tenancy: &str, amount: Decimal) -> ChargeLine {
        ChargeLine {
            grain: Grain { tenancy: tenancy.into(), ..Grain::default() },
            charge: Charge::Cpu,
            quantity: Some(dec!(1)),
            amount,
            rate_card: "c".into(),
            corrects: String::new(),
        }
    }

    fn budget(amount: Decimal) -> Budget {
        Budget {
            monthly_amount: Amount::new(amount).unwrap(),
            currency: "GBP".into(),
            alert_thresholds: vec![50, 80, 100],
        }
    }

    #[test]
    fn the_status_is_not_rewritten_for_every_penny() {
        let b = budget(dec!(100));
        let f = |spent, projected| Figures {
            period: "2026-11".into(),
            month_to_date: spent,
            projected,
            currency: "GBP".into(),
        };
        let first = assess(&b, Some(&f(dec!(10.00), dec!(40.00))), "2026-11", Some("GBP"));
        let a_penny_more = assess(&b, Some(&f(dec!(10.01), dec!(40.01))), "2026-11", Some("GBP"));
        assert_eq!(settled(a_penny_more, Some(first.clone()), &b), first);
        let a_pound_more = assess(&b, Some(&f(dec!(11.00), dec!(40.50))), "2026-11", Some("GBP"));
        assert_eq!(settled(a_pound_more.clone(), Some(first.clone()), &b), a_pound_more);
        let threshold = assess(&b, Some(&f(dec!(50.00), dec!(50.10))), "2026-11", Some("GBP"));
        let just_over = assess(&b, Some(&f(dec!(50.50), dec!(50.60))), "2026-11", Some("GBP"));
        assert_eq!(settled(just_over, Some(threshold.clone()), &b), threshold, "same thresholds, under 1%");
    }

    #[test]
    fn spend_and_projection_per_tenancy() {
        let f = figures(
            "2026-11",
            "GBP",
            &[line("a", dec!(10.00)), line("a", dec!(5.00))],
            &[line("a", dec!(20.00)), line("b", dec!(3.00))],
        );
        assert_eq!((f["a"].month_to_date, f["a"].projected), (dec!(15.00), dec!(35.00)));
        assert_eq!((f["b"].month_to_date, f["b"].projected), (dec!(0), dec!(3.00)));
    }

    #[test]
    fn the_condition_follows_spend_and_projection_and_the_thresholds_reached() {
        let f = |spent, projected| Figures {
            period: "2026-11".into(),
            month_to_date: spent,
            projected,
            currency: "GBP".into(),
        };
        let within = assess(&budget(dec!(100)), Some(&f(dec!(10), dec!(40))), "2026-11", Some("GBP"));
        assert_eq!((within.status, within.reason), ("False", "WithinBudget"));
        let projected = assess(&budget(dec!(100)), Some(&f(dec!(60), dec!(130))), "2026-11", Some("GBP"));
        assert_eq!((projected.status, projected.reason), ("False", "ProjectedToExceed"));
        assert_eq!(projected.budget.unwrap().thresholds_reached, vec![50]);
        let over = assess(&budget(dec!(100)), Some(&f(dec!(100.00), dec!(150))), "2026-11", Some("GBP"));
        assert_eq!((over.status, over.reason), ("True", "Exceeded"));
        assert_eq!(over.budget.unwrap().thresholds_reached, vec![50, 80, 100]);
        let nothing = assess(&budget(dec!(100)), None, "2026-11", Some("GBP"));
        assert_eq!((nothing.reason, nothing.budget.unwrap().month_to_date.as_str()), ("WithinBudget", "0"));
        let euro = assess(&budget(dec!(100)), Some(&f(dec!(1), dec!(1))), "2026-11", Some("EUR"));
        assert_eq!((euro.status, euro.reason), ("Unknown", "CurrencyMismatch"));
        assert!(
            euro.message.contains("spec.budget.currency is GBP") && euro.message.contains("EUR"),
            "{}",
            euro.message
        );
    }
}
