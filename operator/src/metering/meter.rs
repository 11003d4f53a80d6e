//! The meter: watches pods, claims, Services, nodes, Subscriptions and HostedServices, turns what
//! it sees into spans (`tracker`) and hands the changes to the ledger's writer (`writer`) as they
//! happen. Nodes are recorded charged to no tenancy (what no pod reserved of them is unallocated
//! capacity); shared subscriptions and a provider listing its own tenancy are recorded as shares
//! of the service's cost (`shares_observe`), re-observed when the service's split changes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use commons_crds::{HostedService, Subscription, Tenancy};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Namespace, Node, PersistentVolumeClaim, Pod, Service};
use kube::runtime::reflector::Store;
use kube::runtime::watcher::{self, Event};
use kube::{Resource, ResourceExt};
use tokio::sync::mpsc::UnboundedSender;

use super::health::{MeterMetrics, Standing};
use super::observe;
use super::shares_observe::{self, Shares};
use super::tracker::{Observation, Tracker};
use super::writer::Message;
use crate::ledger::{Kind, Ledger, Write};
use crate::watch::Watches;

/// How often the meter records how far its view is complete.
const TICK: Duration = Duration::from_secs(1);

/// One event of one of the meter's watches.
enum Seen {
    Pod(Box<Result<Event<Pod>, watcher::Error>>),
    Claim(Box<Result<Event<PersistentVolumeClaim>, watcher::Error>>),
    Service(Box<Result<Event<Service>, watcher::Error>>),
    Node(Box<Result<Event<Node>, watcher::Error>>),
    Subscription(Box<Result<Event<Subscription>, watcher::Error>>),
    Hosted(Box<Result<Event<HostedService>, watcher::Error>>),
    Tenancy(Arc<Tenancy>),
    Tick,
}

/// What the meter reads besides its own watches.
#[derive(Clone, Debug)]
pub struct Lookups {
    /// Every namespace (which tenancy made it).
    pub namespaces: Store<Namespace>,
    /// Every Tenancy (its organisation).
    pub tenancies: Store<Tenancy>,
    /// Every HostedService: a pod's `commons.dev/hosted-service` label counts only when it names
    /// one in the pod's namespace (the label is the tenant's to set).
    pub hosted: Store<commons_crds::HostedService>,
}

/// Where the meter's findings go.
#[derive(Debug)]
pub struct Sinks {
    /// The ledger's writer.
    pub tx: UnboundedSender<Message>,
    /// Whether metering works.
    pub standing: Arc<Standing>,
    /// The meter's metrics.
    pub metrics: MeterMetrics,
}

/// Where each watch stands: whether its list is complete, and which objects the list in progress
/// has shown. Each watch is known by the kind of span it records: the Service watch by
/// `LoadBalancer`, the Subscription watch by `Share`, the HostedService watch by `ProviderShare`.
#[derive(Debug, Default)]
struct Lists {
    synced: HashMap<Kind, bool>,
    listing: HashMap<Kind, HashSet<String>>,
    /// When each watch last reported an error. A watch resumes after an error without listing
    /// again (nothing is missed), so an error holds back `seen_through` only while errors keep
    /// coming.
    failed_at: HashMap<Kind, i64>,
}

/// How long a watch must go without an error to count as working again.
const QUIET_MS: i64 = 10_000;

/// The kind of span each of the meter's watches records.
const WATCHED: [Kind; 6] =
    [Kind::Pod, Kind::Claim, Kind::LoadBalancer, Kind::Node, Kind::Share, Kind::ProviderShare];

impl Lists {
    fn complete(&self, now: i64) -> bool {
        WATCHED.iter().all(|k| self.synced(*k) && self.failed_at.get(k).is_none_or(|t| now - t >= QUIET_MS))
    }

    /// Whether the watch recording `kind` has completed its current list.
    fn synced(&self, kind: Kind) -> bool {
        self.synced.get(&kind) == Some(&true)
    }
}

/// Runs the meter until `shutdown` resolves. It first brings the ledger's tables up to date and
/// reads what it holds open, retrying while the ledger cannot be reached.
pub async fn run(
    watches: Watches,
    lookups: Lookups,
    tenancy_changes: BoxStream<'static, Arc<Tenancy>>,
    ledger: Ledger,
    sinks: Sinks,
    shutdown: impl std::future::Future<Output = ()> + Send,
) {
    let Sinks { tx, standing, metrics } = sinks;
    let (since, open, watermark) = loop {
        match resume(&ledger).await {
            Ok(r) => break r,
            Err(e) => {
                standing.failing(format!("the {} ledger cannot be read ({e}); retrying", ledger.backend()));
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    };
    standing.ok();
    tracing::info!(open = open.len(), backend = ledger.backend(), "meter resumed");
    let mut tracker = Tracker::new(since, open);
    // The instant up to which everything the meter saw is recorded (or being written): what an
    // object found gone at the next list is closed at.
    let mut seen_through = watermark;
    let mut lists = Lists::default();
    // The Services, nodes and HostedServices seen in this run (by uid).
    let mut known: HashSet<String> = HashSet::new();
    let mut shares = Shares::default();
    let ticks = tokio_stream_interval(TICK);
    let events = futures::stream::select_all([
        watches.events::<Pod>(watcher::Config::default()).map(|e| Seen::Pod(Box::new(e))).boxed(),
        watches
            .events::<PersistentVolumeClaim>(watcher::Config::default())
            .map(|e| Seen::Claim(Box::new(e)))
            .boxed(),
        watches.events::<Service>(watcher::Config::default()).map(|e| Seen::Service(Box::new(e))).boxed(),
        watches.events::<Node>(watcher::Config::default()).map(|e| Seen::Node(Box::new(e))).boxed(),
        watches
            .events::<Subscription>(watcher::Config::default())
            .map(|e| Seen::Subscription(Box::new(e)))
            .boxed(),
        watches
            .events::<HostedService>(watcher::Config::default())
            .map(|e| Seen::Hosted(Box::new(e)))
            .boxed(),
        tenancy_changes.map(Seen::Tenancy).boxed(),
        ticks.map(|_| Seen::Tick).boxed(),
    ]);
    let mut events = std::pin::pin!(events.take_until(shutdown));
    while let Some(seen) = events.next().await {
        let now = Timestamp::now().as_millisecond();
        let writes = match seen {
            Seen::Pod(e) => {
                on_event(*e, Kind::Pod, &mut tracker, &mut lists, seen_through, now, |p, deleted| {
                    let who = observe::attribution(
                        &namespace(p),
                        observe::hosted_service(p, &lookups.hosted),
                        &lookups.namespaces,
                        &lookups.tenancies,
                    )?;
                    Some(observe::pod(p, who, deleted.then(Timestamp::now)))
                })
            }
            Seen::Claim(e) => {
                on_event(*e, Kind::Claim, &mut tracker, &mut lists, seen_through, now, |c, _| {
                    let who =
                        observe::attribution(&namespace(c), None, &lookups.namespaces, &lookups.tenancies)?;
                    Some(observe::claim(c, who))
                })
            }
            Seen::Service(e) => {
                // A Service seen before in this run that becomes a load balancer is billed from
                // now; one seen for the first time, from its creation if that was after the
                // record was last complete.
                let e = *e;
                let after = created_after(&mut known, &e, watermark);
                on_event(e, Kind::LoadBalancer, &mut tracker, &mut lists, seen_through, now, |s, _| {
                    let who =
                        observe::attribution(&namespace(s), None, &lookups.namespaces, &lookups.tenancies)?;
                    Some(observe::service(s, who, after, now))
                })
            }
            // A node, likewise: from its creation only if first seen created after the record was
            // last complete.
            Seen::Node(e) => {
                let e = *e;
                let after = created_after(&mut known, &e, watermark);
                on_event(e, Kind::Node, &mut tracker, &mut lists, seen_through, now, |n, _| {
                    Some(observe::node(n, after, now))
                })
            }
            // A share is decided once the meter's own HostedService list is complete (until then
            // it is decided when that list completes), from the service as that watch last showed
            // it.
            Seen::Subscription(e) => {
                let e = *e;
                if let Ok(event) = &e {
                    shares.follow_subscription(event);
                }
                let ready = lists.synced(Kind::ProviderShare);
                on_event(e, Kind::Share, &mut tracker, &mut lists, seen_through, now, |s, _| {
                    ready.then(|| share(s, &shares, &lookups, (watermark, now))).flatten()
                })
            }
            // The provider's own share; then the shares of the subscriptions to the service (its
            // split may have changed, or it may be gone), or of all of them once a list completes.
            Seen::Hosted(e) => {
                let e = *e;
                let after = created_after(&mut known, &e, watermark);
                let touched = e.as_ref().ok().and_then(|event| {
                    shares.follow_service(event);
                    shares_observe::touched(event)
                });
                let mut writes =
                    on_event(e, Kind::ProviderShare, &mut tracker, &mut lists, seen_through, now, |h, _| {
                        let place = shares_observe::service_key(&namespace(h), &h.name_any());
                        let who = observe::attribution(
                            &namespace(h),
                            Some(&place),
                            &lookups.namespaces,
                            &lookups.tenancies,
                        )?;
                        Some(shares_observe::provider_share(h, who, after, now))
                    });
                if let Some(place) = touched.filter(|_| lists.synced(Kind::ProviderShare)) {
                    for s in shares.subscribers(place.as_ref()) {
                        writes.extend(
                            share(s, &shares, &lookups, (watermark, now))
                                .map(|o| tracker.observe(o, now))
                                .unwrap_or_default(),
                        );
                    }
                }
                writes
            }
            // Who pays may have changed (a new cost centre, the organisation's name or sector).
            Seen::Tenancy(t) => {
                tracker.reattribute(&t.name_any(), |old| observe::of_tenancy(&t, &old.hosted_service), now)
            }
            Seen::Tick => {
                metrics.lag.set((now - seen_through) / 1000);
                if lists.complete(now) {
                    seen_through = now;
                    let _ = tx.send(Message::SeenThrough(now));
                }
                Vec::new()
            }
        };
        if !writes.is_empty() {
            let estimated = writes.iter().filter(|w| matches!(w, Write::Close(c) if c.estimated)).count();
            if estimated > 0 {
                tracing::warn!(
                    estimated,
                    "objects went while Commons was not watching; closed at the last instant seen"
                );
            }
            let _ = tx.send(Message::Changes(writes));
        }
        metrics.open.set(i64::try_from(tracker.open_count()).unwrap_or(i64::MAX));
    }
}

/// When metering began, the spans the ledger holds open, and how far it was complete.
async fn resume(ledger: &Ledger) -> crate::ledger::Result<(i64, Vec<crate::ledger::Interval>, i64)> {
    ledger.migrate().await?;
    // Kubernetes records instants to the whole second: metering begins at the start of the
    // second it first runs in, so a pod that starts in that second is billed from its start.
    let now = Timestamp::now().as_millisecond();
    let since = ledger.metering_since(now - now.rem_euclid(1000)).await?;
    let open = ledger.open_intervals().await?;
    let watermark = ledger.seen_through().await?.unwrap_or(since);
    Ok((since, open, watermark))
}

fn namespace<K: Resource>(obj: &K) -> String {
    obj.meta().namespace.clone().unwrap_or_default()
}

/// The watermark an object's creation is weighed against (`observe::from_creation`): the one the
/// meter resumed from when this event shows the object for the first time in this run; otherwise
/// none (it is billable from the instant it is seen to be, if not already). A deletion forgets it.
fn created_after<K: Resource>(
    known: &mut HashSet<String>,
    event: &Result<Event<K>, watcher::Error>,
    watermark: i64,
) -> i64 {
    let first_sight = match event {
        Ok(Event::Apply(o) | Event::InitApply(o)) => known.insert(o.uid().unwrap_or_default()),
        Ok(Event::Delete(o)) => {
            known.remove(&o.uid().unwrap_or_default());
            false
        }
        _ => false,
    };
    if first_sight { watermark } else { i64::MAX }
}

/// A shared subscription's share, charged to the tenancy owning its namespace; `None` when no
/// tenancy does.
/// Billed from its own `activeSince` only if that is after `watermark` (see
/// `shares_observe::from_watermark`).
fn share(
    s: &Subscription,
    shares: &Shares,
    lookups: &Lookups,
    (watermark, now): (i64, i64),
) -> Option<Observation> {
    let target = &s.spec.service;
    let place = shares_observe::service_key(&target.namespace, &target.name);
    let who = observe::attribution(&namespace(s), Some(&place), &lookups.namespaces, &lookups.tenancies)?;
    let mut o = shares_observe::share(s, who, shares.service(target));
    o.span = shares_observe::from_watermark(o.span, watermark, now);
    Some(o)
}

/// What one watch event changes. `observe(obj, deleted)` is `None` for an object in no tenancy's
/// namespace (a node is charged to no tenancy, but observed), and for a subscription while its
/// share waits for the HostedService list.
fn on_event<K: Resource>(
    event: Result<Event<K>, watcher::Error>,
    kind: Kind,
    tracker: &mut Tracker,
    lists: &mut Lists,
    seen_through: i64,
    now: i64,
    observe: impl Fn(&K, bool) -> Option<super::tracker::Observation>,
) -> Vec<Write> {
    let event = match event {
        Ok(e) => e,
        Err(e) => {
            tracing::debug!(%kind, error = %e, "meter watch error; it is retried");
            lists.failed_at.insert(kind, now);
            return Vec::new();
        }
    };
    match event {
        Event::Init => {
            lists.synced.insert(kind, false);
            lists.listing.insert(kind, HashSet::new());
            Vec::new()
        }
        Event::InitApply(obj) => {
            if let Some(uid) = obj.uid() {
                lists.listing.entry(kind).or_default().insert(uid);
            }
            observe(&obj, false).map(|o| tracker.observe(o, now)).unwrap_or_default()
        }
        Event::Apply(obj) => observe(&obj, false).map(|o| tracker.observe(o, now)).unwrap_or_default(),
        Event::Delete(obj) => {
            let uid = obj.uid().unwrap_or_default();
            // A pod's end is its own recorded end if it finished, otherwise this instant.
            let mut writes = observe(&obj, true).map(|o| tracker.observe(o, now)).unwrap_or_default();
            writes.extend(tracker.gone(&uid, now, false));
            writes
        }
        Event::InitDone => {
            lists.synced.insert(kind, true);
            let listed = lists.listing.remove(&kind).unwrap_or_default();
            // Open in the ledger but not in the list: it went while nobody watched. It is closed at
            // the last instant the record was complete, marked estimated.
            tracker
                .open_of(kind)
                .into_iter()
                .filter(|uid| !listed.contains(uid))
                .flat_map(|uid| tracker.gone(&uid, seen_through, true))
                .collect()
        }
    }
}

fn tokio_stream_interval(period: Duration) -> impl Stream<Item = ()> {
    futures::stream::unfold(tokio::time::interval(period), |mut i| async move {
        i.tick().await;
        Some(((), i))
    })
}
