//! Watches shared by the controllers: reflected streams and owner mapping.

use commons_crds::labels;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

/// Every watch of the process, restarted from a fresh list when the apiserver comes back from a
/// restart.
///
/// A watch opened while a restarting apiserver is still starting can be accepted and then deliver
/// nothing for half a minute or more (seen on the local control plane: a Tenancy created just after
/// a restart waited 25–30 s); resuming from the last resourceVersion does not help. So any watch
/// error raises a suspicion; the monitor then waits until the apiserver has answered `/readyz` for
/// [`SETTLED`] and, if it was unreachable or not ready meanwhile, restarts every watch (each
/// re-lists, the stores are replaced, and every object is reconciled once; nothing is written
/// unless something changed).
#[derive(Clone)]
pub struct Watches {
    client: Client,
    epoch: tokio::sync::watch::Receiver<u64>,
    suspect: std::sync::Arc<tokio::sync::Notify>,
    leading: tokio::sync::watch::Receiver<bool>,
}

impl std::fmt::Debug for Watches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watches").field("epoch", &*self.epoch.borrow()).finish_non_exhaustive()
    }
}

/// Times every watch was restarted after the apiserver came back (registered by `Metrics::new`).
#[allow(clippy::expect_used)] // Static, valid options: construction cannot fail.
pub static RESTARTS: std::sync::LazyLock<prometheus::IntCounter> = std::sync::LazyLock::new(|| {
    prometheus::IntCounter::new(
        "watch_restarts_total",
        "Times every watch was restarted from a fresh list after the apiserver came back.",
    )
    .expect("static metric options are valid")
});

/// How long the apiserver must have been ready before watches restart.
pub const SETTLED: std::time::Duration = std::time::Duration::from_secs(2);

impl Watches {
    /// Starts the restart monitor.
    pub fn start(client: Client) -> Watches {
        Watches::start_gated(client, tokio::sync::watch::channel(true).1)
    }

    /// Like [`Watches::start`], for a replica that leads only while `leading` says so: the shared
    /// stores fill at once, and their subscribers (the controllers) hear of changes only once it
    /// leads (then of every object first; see `reflectors`).
    pub fn start_gated(client: Client, leading: tokio::sync::watch::Receiver<bool>) -> Watches {
        let (tx, epoch) = tokio::sync::watch::channel(0);
        let suspect = std::sync::Arc::new(tokio::sync::Notify::new());
        tokio::spawn(monitor(client.clone(), tx, suspect.clone()));
        Watches { client, epoch, suspect, leading }
    }

    /// Whether this replica leads (always, without leader election).
    pub fn leading(&self) -> tokio::sync::watch::Receiver<bool> {
        self.leading.clone()
    }

    /// The client the watches use.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// A watch of `K` with `config`: retried with [`QuickBackoff`], started afresh (a new list)
    /// after the apiserver restarts, and without `managedFields`.
    pub fn events<K>(
        &self,
        config: watcher::Config,
    ) -> impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    {
        use futures::StreamExt;
        let api = Api::<K>::all(self.client.clone());
        let (epoch, suspect) = (self.epoch.clone(), self.suspect.clone());
        futures::stream::unfold(epoch, move |mut epoch| {
            let (api, config, suspect) = (api.clone(), config.clone(), suspect.clone());
            async move {
                epoch.mark_unchanged();
                let mut next = epoch.clone();
                let restarted = async move {
                    let _ = next.changed().await;
                };
                let stream = watcher(api, config)
                    .inspect(move |r| {
                        if r.is_err() {
                            suspect.notify_one();
                        }
                    })
                    .take_until(restarted);
                Some((stream, epoch))
            }
        })
        .flatten()
        .backoff(QuickBackoff::default())
        // No controller reads managedFields, and they are often the largest part of an object:
        // only a marker stays where Commons still holds fields through a create.
        .modify(|obj: &mut K| crate::ownership::mark(obj.meta_mut()))
    }
}

/// Only what Commons manages, unless `all`.
pub fn managed_or_all(all: bool) -> watcher::Config {
    if all {
        watcher::Config::default()
    } else {
        watcher::Config::default().labels(&format!("{}={}", labels::MANAGED_BY, labels::MANAGER))
    }
}

/// Whether `obj` carries the label [`managed_or_all`] selects on: one of Commons' own objects.
pub fn is_managed<K: Resource>(obj: &K) -> bool {
    obj.meta().labels.as_ref().and_then(|l| l.get(labels::MANAGED_BY)).map(String::as_str)
        == Some(labels::MANAGER)
}

async fn apiserver_ready(client: &Client) -> bool {
    let Ok(req) = http::Request::get("/readyz").body(Vec::new()) else { return false };
    client.request_text(req).await.is_ok_and(|body| body.trim() == "ok")
}

async fn monitor(
    client: Client,
    epoch: tokio::sync::watch::Sender<u64>,
    suspect: std::sync::Arc<tokio::sync::Notify>,
) {
    let poll = std::time::Duration::from_millis(500);
    loop {
        suspect.notified().await;
        let mut was_down = false;
        let mut ready_since: Option<tokio::time::Instant> = None;
        let give_up = tokio::time::Instant::now() + std::time::Duration::from_secs(600);
        loop {
            if apiserver_ready(&client).await {
                let since = *ready_since.get_or_insert_with(tokio::time::Instant::now);
                if since.elapsed() >= SETTLED {
                    break;
                }
            } else {
                was_down = true;
                ready_since = None;
            }
            if tokio::time::Instant::now() >= give_up {
                break;
            }
            tokio::time::sleep(poll).await;
        }
        if was_down {
            tracing::info!(
                "the apiserver is back after a restart or outage: restarting every watch from a fresh list"
            );
            epoch.send_modify(|e| *e += 1);
            RESTARTS.inc();
        }
        // Errors raised while waiting belong to the same episode.
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let _ = tokio::time::timeout(std::time::Duration::ZERO, suspect.notified()).await;
    }
}

/// Retry delays for watches: 250 ms doubling to at most 5 s, with jitter, starting again after a
/// success. kube-runtime's default grows to 30 s, so after the apiserver restarts (or a network
/// blip) every watch and the controllers' shared trigger stream could sit idle for up to 30 s
/// more; with this a Tenancy made just after a restart is reconciled within seconds.
///
/// A watcher reports `Init` (a success to the stream's back-off) before each list it tries, also
/// when that list then fails; so a reset counts only once no delay has been handed out for
/// [`QuickBackoff::QUIET`]. Without that, every watch retried every 250 ms for as long as the
/// apiserver was unreachable (about 100 connection attempts a second from one replica).
#[derive(Debug, Clone)]
pub struct QuickBackoff {
    next: std::time::Duration,
    seed: u64,
    last: Option<std::time::Instant>,
}

impl QuickBackoff {
    /// The first delay.
    pub const MIN: std::time::Duration = std::time::Duration::from_millis(250);
    /// The longest delay.
    pub const MAX: std::time::Duration = std::time::Duration::from_secs(5);
    /// How long after the last delay a success starts the delays again from [`QuickBackoff::MIN`].
    pub const QUIET: std::time::Duration = std::time::Duration::from_secs(10);
}

impl Default for QuickBackoff {
    fn default() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::from(d.subsec_nanos()))
            .unwrap_or(1)
            | 1;
        QuickBackoff { next: Self::MIN, seed, last: None }
    }
}

impl Iterator for QuickBackoff {
    type Item = std::time::Duration;

    fn next(&mut self) -> Option<std::time::Duration> {
        Some(self.delay_at(std::time::Instant::now()))
    }
}

impl QuickBackoff {
    /// The next delay, handed out at `now`.
    fn delay_at(&mut self, now: std::time::Instant) -> std::time::Duration {
        let base = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        self.last = Some(now);
        // xorshift: up to 25% less than the base delay, so many watches do not retry in step.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let cut = base.mul_f64((self.seed % 1000) as f64 / 4000.0);
        base.saturating_sub(cut)
    }

    /// A success seen at `now`: the delays start again from [`QuickBackoff::MIN`] only if none
    /// was handed out for [`QuickBackoff::QUIET`].
    fn reset_at(&mut self, now: std::time::Instant) {
        if self.last.is_none_or(|last| now.saturating_duration_since(last) >= Self::QUIET) {
            self.next = Self::MIN;
            self.last = None;
        }
    }
}

impl kube::runtime::utils::Backoff for QuickBackoff {
    fn reset(&mut self) {
        self.reset_at(std::time::Instant::now());
    }
}

/// How many reconciles of one controller run at once.
pub const CONCURRENCY: u16 = 64;

/// A predicate (for `predicate_filter`) that lets an object through when what a controller reads
/// of it may have changed: its spec (`generation`), its annotations, or its deletion starting —
/// not a status write by Commons itself. Keyed with the uid, so a recreated object passes.
pub fn spec_changed<K: Resource>(obj: &K) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let meta = obj.meta();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (&meta.uid, meta.generation, meta.deletion_timestamp.is_some(), &meta.annotations).hash(&mut h);
    Some(h.finish())
}

/// A predicate that lets an object through when its labels change or its deletion starts (what
/// the controllers read of a Namespace).
pub fn labels_or_deletion<K: Resource>(obj: &K) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let meta = obj.meta();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (&meta.uid, &meta.labels, meta.deletion_timestamp.is_some()).hash(&mut h);
    Some(h.finish())
}

/// The `Owner` that controls `obj`, if any. Cluster-scoped owners are keyed without a namespace
/// (kube-runtime's `owns` would key them by the child's namespace, so one owner could be
/// reconciled twice at once).
pub fn owned_by<Owner, K>(obj: &K) -> Option<ObjectRef<Owner>>
where
    Owner: Resource<DynamicType = ()>,
    K: Resource,
{
    let kind = Owner::kind(&());
    let group = Owner::group(&());
    obj.owner_references()
        .iter()
        .find(|o| {
            o.controller == Some(true) && o.kind == kind && o.api_version.starts_with(&format!("{group}/"))
        })
        .map(|o| ObjectRef::new(&o.name))
}

/// A reflector store that can say, without waiting, whether it has had its first full list.
pub trait Synced {
    /// `Some(true)` once synced, `Some(false)` while still filling, `None` if its writer is gone.
    fn synced(&self) -> Option<bool>;
}

impl<K> Synced for Store<K>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    fn synced(&self) -> Option<bool> {
        use futures::FutureExt;
        match self.wait_until_ready().now_or_never() {
            Some(Ok(())) => Some(true),
            Some(Err(_)) => None,
            None => Some(false),
        }
    }
}

/// Waits (up to 30 s) until every store has had its first full list, so a reconcile never mistakes
/// a store that is still filling for objects that are missing. Polled, not awaited: a waiter parked
/// before the stores fill is not reliably woken.
pub async fn synced(stores: &[&(dyn Synced + Sync)]) -> Result<(), crate::error::Error> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let states: Vec<Option<bool>> = stores.iter().map(|s| s.synced()).collect();
        if states.iter().any(Option::is_none) {
            return Err(crate::error::Error::StoreClosed);
        }
        if states.iter().all(|s| *s == Some(true)) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(crate::error::Error::StoreNotReady);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn quick_backoff_doubles_to_five_seconds_with_jitter_and_resets_only_after_a_quiet_spell() {
        let mut b = QuickBackoff::default();
        let mut now = std::time::Instant::now();
        let mut delays = Vec::new();
        for _ in 0..8 {
            let d = b.delay_at(now);
            // The watcher's `Init` before each failed list is an `Ok` to the stream: no reset.
            now += d;
            b.reset_at(now);
            delays.push(d);
        }
        for (d, base_ms) in delays.iter().zip([250u64, 500, 1000, 2000, 4000, 5000, 5000, 5000]) {
            let base = std::time::Duration::from_millis(base_ms);
            assert!(*d <= base && *d >= base.mul_f64(0.75), "{d:?} for a base of {base:?}");
        }
        // A success just short of a quiet spell after the last delay: still no reset.
        b.delay_at(now);
        b.reset_at(now + QuickBackoff::QUIET - std::time::Duration::from_millis(1));
        assert!(b.delay_at(now) > QuickBackoff::MIN);
        // Quiet for a while (the watch ran): the next failure waits the shortest delay again.
        b.reset_at(now + QuickBackoff::QUIET);
        assert!(b.delay_at(now + QuickBackoff::QUIET) <= QuickBackoff::MIN);
        // And a success before any failure resets too.
        let mut fresh = QuickBackoff::default();
        fresh.reset_at(now);
        assert!(fresh.delay_at(now) <= QuickBackoff::MIN);
    }
}
