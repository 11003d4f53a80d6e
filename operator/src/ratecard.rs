//! The RateCard controller: which card is in force now, which are scheduled or superseded, and
//! which conflict (two cards taking effect at the same instant, or a card in another currency
//! than the one in force), reported in each card's status so a platform team sees what prices
//! apply before anything is billed at them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use commons_crds::rate_card::{RateCard, RateCardStatus};
use futures::StreamExt;
use jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};

use crate::conditions::{carry_transition_times, condition};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::reflectors::Reflector;

/// The condition every card carries.
pub const IN_FORCE: &str = "InForce";

/// Where a card stands at an instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Its prices apply now.
    InForce,
    /// Its prices apply from its effectiveFrom, later.
    Scheduled,
    /// A later card's prices apply now (or will before this one is used again).
    Superseded(String),
    /// It cannot be used: another card takes effect at the same instant, or it is in another
    /// currency than the cards before it.
    Conflict(String),
}

/// Every card's standing at `now`.
pub fn standings(cards: &[Arc<RateCard>], now: Timestamp) -> BTreeMap<String, Standing> {
    let mut by_instant: BTreeMap<Timestamp, Vec<&RateCard>> = BTreeMap::new();
    for c in cards {
        by_instant.entry(c.spec.effective_from.0).or_default().push(c);
    }
    let mut out = BTreeMap::new();
    // The usable cards in time order, and the currency of the first.
    let mut usable: Vec<&RateCard> = Vec::new();
    for group in by_instant.values() {
        if group.len() > 1 {
            let names: Vec<String> = group.iter().map(|c| c.name_any()).collect();
            for c in group {
                let others: Vec<&str> =
                    names.iter().filter(|n| **n != c.name_any()).map(String::as_str).collect();
                out.insert(
                    c.name_any(),
                    Standing::Conflict(format!("takes effect at the same instant as {}", others.join(", "))),
                );
            }
            continue;
        }
        let c = group[0];
        match usable.first() {
            Some(first) if first.spec.currency != c.spec.currency => {
                let why = format!(
                    "its currency {} is not {}, the currency of {}",
                    c.spec.currency,
                    first.spec.currency,
                    first.name_any()
                );
                out.insert(c.name_any(), Standing::Conflict(why));
            }
            _ => usable.push(c),
        }
    }
    let current = usable.iter().rposition(|c| c.spec.effective_from.0 <= now);
    for (i, c) in usable.iter().enumerate() {
        let standing = match current {
            Some(k) if i == k => Standing::InForce,
            Some(k) if i < k => Standing::Superseded(usable[i + 1].name_any()),
            _ => Standing::Scheduled,
        };
        out.insert(c.name_any(), standing);
    }
    out
}

/// The next instant a card takes effect after `now`.
pub fn next_change(cards: &[Arc<RateCard>], now: Timestamp) -> Option<Timestamp> {
    cards.iter().map(|c| c.spec.effective_from.0).filter(|t| *t > now).min()
}

fn status(card: &RateCard, standing: &Standing) -> RateCardStatus {
    let generation = card.metadata.generation;
    let from = card.spec.effective_from.0;
    let mut conditions = vec![match standing {
        Standing::InForce => {
            condition(IN_FORCE, true, "InForce", format!("its prices apply since {from}"), generation)
        }
        Standing::Scheduled => {
            condition(IN_FORCE, false, "Scheduled", format!("its prices apply from {from}"), generation)
        }
        Standing::Superseded(by) => {
            condition(IN_FORCE, false, "Superseded", format!("the prices of {by} apply after it"), generation)
        }
        Standing::Conflict(why) => {
            condition(IN_FORCE, false, "Conflict", format!("cannot be used: {why}"), generation)
        }
    }];
    if let Some(previous) = card.status.as_ref() {
        carry_transition_times(&mut conditions, &previous.conditions);
    }
    RateCardStatus { observed_generation: generation, conditions }
}

struct Context {
    client: Client,
    cards: Store<RateCard>,
    metrics: Metrics,
    resync: Duration,
}

async fn reconcile(card: Arc<RateCard>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile_duration.with_label_values(&["ratecard"]).start_timer();
    crate::watch::synced(&[&ctx.cards]).await?;
    let cards = ctx.cards.state();
    let now = Timestamp::now();
    let name = card.name_any();
    let Some(standing) = standings(&cards, now).remove(&name) else {
        return Ok(Action::await_change());
    };
    let new = status(&card, &standing);
    if card.status.as_ref() != Some(&new) {
        crate::apply::write_status(
            &Api::<RateCard>::all(ctx.client.clone()),
            &name,
            card.status.as_ref(),
            &new,
        )
        .await?;
    }
    // Standings move when a card takes effect: be back then.
    let until = next_change(&cards, now)
        .and_then(|t| Duration::try_from(t.duration_since(now)).ok())
        .map_or(ctx.resync, |d| d.min(ctx.resync) + Duration::from_millis(500));
    Ok(Action::requeue(until))
}

fn error_policy(card: Arc<RateCard>, error: &Error, ctx: Arc<Context>) -> Action {
    crate::error::retry_after_failure("ratecard", &card.name_any(), error, &ctx.metrics)
}

/// Runs the RateCard controller until `shutdown` resolves: any card's change re-evaluates every
/// card (there are few).
pub async fn run(
    watches: &crate::watch::Watches,
    client: Client,
    metrics: Metrics,
    resync: Duration,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let mut cards = Reflector::<RateCard>::new(watcher::Config::default(), |_| {});
    let store = cards.store();
    let changed = cards.subscribe_when(crate::watch::spec_changed).boxed();
    let all = cards.subscribe_when(crate::watch::spec_changed).map(|_| ()).boxed();
    cards.start(watches);
    let ctx = Arc::new(Context { client, cards: store.clone(), metrics, resync });
    let triggers =
        crate::drive::Triggers { changed, concerned: futures::stream::pending().boxed(), all: Some(all) };
    crate::drive::run(store, triggers, reconcile, error_policy, ctx, shutdown).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use commons_crds::rate_card::{Prices, RateCardSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn card(name: &str, from: &str, currency: &str) -> Arc<RateCard> {
        let price = |s: &str| s.parse().unwrap();
        Arc::new(RateCard::new(
            name,
            RateCardSpec {
                currency: currency.into(),
                effective_from: Time(from.parse().unwrap()),
                prices: Prices {
                    cpu_core_hour: price("0.03"),
                    memory_gib_hour: price("0.004"),
                    storage_gib_hour: price("0.0001"),
                    load_balancer_hour: price("0.02"),
                },
                platform_overhead_percent: price("10"),
            },
        ))
    }

    #[test]
    fn standings_by_table() {
        let now: Timestamp = "2026-12-02T00:00:00Z".parse().unwrap();
        let cards = vec![
            card("2026-04", "2026-04-01T00:00:00Z", "GBP"),
            card("2026-10", "2026-10-01T00:00:00Z", "GBP"),
            card("2027-04", "2027-04-01T00:00:00Z", "GBP"),
            card("dup-a", "2027-06-01T00:00:00Z", "GBP"),
            card("dup-b", "2027-06-01T00:00:00Z", "GBP"),
            card("euro", "2027-08-01T00:00:00Z", "EUR"),
        ];
        let s = standings(&cards, now);
        assert_eq!(s["2026-04"], Standing::Superseded("2026-10".into()));
        assert_eq!(s["2026-10"], Standing::InForce);
        assert_eq!(s["2027-04"], Standing::Scheduled);
        assert!(matches!(&s["dup-a"], Standing::Conflict(w) if w.contains("dup-b")));
        assert!(matches!(&s["dup-b"], Standing::Conflict(w) if w.contains("dup-a")));
        assert!(matches!(&s["euro"], Standing::Conflict(w) if w.contains("EUR is not GBP")));
        assert_eq!(next_change(&cards, now), Some("2027-04-01T00:00:00Z".parse().unwrap()));
        let none_yet = standings(&cards[2..3], now);
        assert_eq!(none_yet["2027-04"], Standing::Scheduled);
    }
}
