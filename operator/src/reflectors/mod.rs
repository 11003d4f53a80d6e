//! One watch, one store and one copy of each object per kind, shared by the controllers and the
//! quota webhook.
//!
//! A [`Reflector`] is set up first (its store can be handed out at once, and any number of
//! subscribers and event sinks added), then started: one task follows the watch, keeps the store,
//! and tells each subscriber, through a channel of its own, which objects a change touched —
//! deletions too, and after a re-list also the objects that went while the watch was down. So no
//! object is decoded or held twice, and a slow subscriber never holds up the watch or the others.
//! (kube-runtime's shared streams tell subscribers nothing of deletions, which the controllers
//! need to put back a deleted child.)

use std::collections::HashMap;
use std::sync::Arc;

use futures::channel::mpsc::{UnboundedSender, unbounded};
use futures::{Stream, StreamExt};
use kube::Resource;
use kube::runtime::reflector::store::Writer;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use serde::de::DeserializeOwned;

pub mod shared;
pub mod slim;
pub use shared::Shared;
pub use slim::Slim;

/// An object a change touched, and whether that change deleted it.
#[derive(Debug)]
pub struct Touched<K> {
    /// The object as stored (as last seen, for a deletion).
    pub object: Arc<K>,
    /// Whether the object is gone.
    pub deleted: bool,
}

impl<K> Clone for Touched<K> {
    fn clone(&self) -> Self {
        Touched { object: self.object.clone(), deleted: self.deleted }
    }
}

/// Something that follows the raw events of a watch (an index of its own over the objects).
pub type Sink<K> = Box<dyn FnMut(&watcher::Event<K>) + Send>;

/// A watch of `K` and its store, not started yet: hand out its store, add subscribers and sinks,
/// then [`Reflector::start`] it.
pub struct Reflector<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    config: watcher::Config,
    strip: fn(&mut K),
    writer: Writer<K>,
    subscribers: Vec<UnboundedSender<Touched<K>>>,
    sinks: Vec<Sink<K>>,
}

impl<K> std::fmt::Debug for Reflector<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reflector")
            .field("kind", &K::kind(&()))
            .field("subscribers", &self.subscribers.len())
            .field("sinks", &self.sinks.len())
            .finish_non_exhaustive()
    }
}

impl<K> Reflector<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    /// A reflector of the objects `config` selects, keeping of each only what `strip` leaves
    /// (`managedFields` always go).
    pub fn new(config: watcher::Config, strip: fn(&mut K)) -> Reflector<K> {
        Reflector { config, strip, writer: Writer::default(), subscribers: Vec::new(), sinks: Vec::new() }
    }

    /// The store this reflector fills (ready once the first full list is in).
    pub fn store(&self) -> Store<K> {
        self.writer.as_reader()
    }

    /// Every object a change touches, deleted ones included.
    pub fn subscribe(&mut self) -> impl Stream<Item = Arc<K>> + Send + 'static {
        let (tx, rx) = unbounded();
        self.subscribers.push(tx);
        rx.map(|t: Touched<K>| t.object)
    }

    /// The objects whose `key` changed (a hash of what the subscriber reads; see
    /// `watch::spec_changed`), and every deletion.
    pub fn subscribe_when(
        &mut self,
        key: fn(&K) -> Option<u64>,
    ) -> impl Stream<Item = Arc<K>> + Send + 'static {
        let (tx, rx) = unbounded();
        self.subscribers.push(tx);
        let mut seen: HashMap<Identity, u64> = HashMap::new();
        rx.filter_map(move |t: Touched<K>| std::future::ready(when_changed(&mut seen, key, t)))
    }

    /// Feeds every raw event of the watch to `sink`, after the store has taken it.
    pub fn feed(&mut self, sink: Sink<K>) {
        self.sinks.push(sink);
    }

    /// Starts the watch.
    pub fn start(self, watches: &crate::watch::Watches) {
        let events = watches.events::<K>(self.config).map(move |r| {
            r.map(|mut e| {
                match &mut e {
                    watcher::Event::Apply(o) | watcher::Event::Delete(o) | watcher::Event::InitApply(o) => {
                        (self.strip)(o);
                        strip_last_applied(o);
                    }
                    watcher::Event::Init | watcher::Event::InitDone => {}
                }
                e
            })
        });
        tokio::spawn(follow(events, self.writer, self.subscribers, self.sinks, watches.leading()));
    }
}

/// The annotation client-side `kubectl apply` keeps a whole copy of the object in: read by nothing
/// here, and often the largest part of an object.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

fn strip_last_applied<K: Resource>(obj: &mut K) {
    let meta = obj.meta_mut();
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
        if annotations.is_empty() {
            meta.annotations = None;
        }
    }
}

/// For the objects Commons makes and only compares with what it wants (the children): drops the
/// metadata the apiserver sets and nothing reads (uid, resourceVersion, creation time,
/// generation). Owner references stay: they map a child to its owner.
pub fn unread_meta<K: Resource>(obj: &mut K) {
    let meta = obj.meta_mut();
    meta.uid = None;
    meta.resource_version = None;
    meta.creation_timestamp = None;
    meta.generation = None;
}

/// An object's identity: its namespace and name (exact, so no two objects are ever confused).
type Identity = (Option<String>, Option<String>);

fn identity<K: Resource>(obj: &K) -> Identity {
    let meta = obj.meta();
    (meta.namespace.clone(), meta.name.clone())
}

/// Whether `touched` passes a subscriber that reads what `key` hashes: it does when that changed,
/// and always when the object was deleted (then it is forgotten).
fn when_changed<K: Resource>(
    seen: &mut HashMap<Identity, u64>,
    key: fn(&K) -> Option<u64>,
    touched: Touched<K>,
) -> Option<Arc<K>> {
    let id = identity(touched.object.as_ref());
    if touched.deleted {
        seen.remove(&id);
        return Some(touched.object);
    }
    let Some(value) = key(&touched.object) else { return Some(touched.object) };
    (seen.insert(id, value) != Some(value)).then_some(touched.object)
}

/// Follows the watch: the store takes each event, then the sinks, then every subscriber is told
/// what it touched. A subscriber that has gone is dropped. Subscribers are told nothing until
/// `leading` says this replica leads; then first of every object the store holds.
async fn follow<K>(
    events: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send,
    mut writer: Writer<K>,
    mut subscribers: Vec<UnboundedSender<Touched<K>>>,
    mut sinks: Vec<Sink<K>>,
    mut leading: tokio::sync::watch::Receiver<bool>,
) where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    let store = writer.as_reader();
    let mut events = std::pin::pin!(events);
    let mut open = *leading.borrow_and_update();
    // Whether the leadership channel can still change (it cannot once its sender is gone).
    let mut listening = !open;
    loop {
        let event = tokio::select! {
            event = events.next() => match event {
                Some(event) => event,
                None => return,
            },
            changed = leading.changed(), if listening => {
                match changed {
                    Ok(()) if *leading.borrow_and_update() => {
                        (open, listening) = (true, false);
                        let all: Vec<Touched<K>> =
                            store.state().into_iter().map(|object| Touched { object, deleted: false }).collect();
                        subscribers.retain(|tx| all.iter().all(|t| tx.unbounded_send(t.clone()).is_ok()));
                    }
                    Ok(()) => {}
                    Err(_) => listening = false,
                }
                continue;
            }
        };
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                tracing::debug!(kind = %K::kind(&()), error = %e, "watch error");
                continue;
            }
        };
        let before = matches!(event, watcher::Event::InitDone).then(|| store.state());
        writer.apply_watcher_event(&event);
        for sink in &mut sinks {
            sink(&event);
        }
        if !open {
            continue;
        }
        let touched = touched_by(&event, &store, before);
        subscribers.retain(|tx| touched.iter().all(|t| tx.unbounded_send(t.clone()).is_ok()));
    }
}

/// The objects `event` touched, as the store now holds them. A re-list touches every object, and
/// deletes those the store had `before` it that it no longer lists.
fn touched_by<K>(event: &watcher::Event<K>, store: &Store<K>, before: Option<Vec<Arc<K>>>) -> Vec<Touched<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    match event {
        watcher::Event::Apply(obj) => store
            .get(&ObjectRef::from_obj(obj))
            .map(|object| Touched { object, deleted: false })
            .into_iter()
            .collect(),
        watcher::Event::Delete(obj) => vec![Touched { object: Arc::new(obj.clone()), deleted: true }],
        watcher::Event::InitDone => {
            let now = store.state();
            let listed: std::collections::HashSet<Identity> =
                now.iter().map(|o| identity(o.as_ref())).collect();
            let gone = before
                .into_iter()
                .flatten()
                .filter(|o| !listed.contains(&identity(o.as_ref())))
                .map(|object| Touched { object, deleted: true });
            now.into_iter().map(|object| Touched { object, deleted: false }).chain(gone).collect()
        }
        watcher::Event::Init | watcher::Event::InitApply(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Namespace;
    use kube::api::ObjectMeta;
    use std::time::Duration;

    fn ns(name: &str, labels: &[(&str, &str)]) -> Namespace {
        Namespace {
            metadata: ObjectMeta {
                name: Some(name.into()),
                uid: Some(format!("uid-{name}")),
                labels: Some(labels.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        }
    }

    fn names(touched: &[Touched<Namespace>]) -> Vec<(String, bool)> {
        let mut v: Vec<(String, bool)> =
            touched.iter().map(|t| (t.object.metadata.name.clone().unwrap_or_default(), t.deleted)).collect();
        v.sort();
        v
    }

    #[test]
    fn a_relist_touches_every_object_and_deletes_those_that_went_meanwhile() {
        let mut writer: Writer<Namespace> = Writer::default();
        let store = writer.as_reader();
        for e in [
            watcher::Event::Init,
            watcher::Event::InitApply(ns("a", &[])),
            watcher::Event::InitApply(ns("b", &[])),
            watcher::Event::InitDone,
        ] {
            writer.apply_watcher_event(&e);
        }
        let before = Some(store.state());
        // The watch was down while `b` went and `c` came.
        for e in [
            watcher::Event::Init,
            watcher::Event::InitApply(ns("a", &[])),
            watcher::Event::InitApply(ns("c", &[])),
        ] {
            assert!(touched_by(&e, &store, None).is_empty(), "nothing is told until the list is complete");
            writer.apply_watcher_event(&e);
        }
        writer.apply_watcher_event(&watcher::Event::InitDone);
        let touched = touched_by(&watcher::Event::InitDone, &store, before);
        assert_eq!(names(&touched), vec![("a".into(), false), ("b".into(), true), ("c".into(), false)]);
    }

    #[test]
    fn applies_are_told_as_stored_and_deletions_as_last_seen() {
        let mut writer: Writer<Namespace> = Writer::default();
        let store = writer.as_reader();
        let applied = watcher::Event::Apply(ns("a", &[("x", "1")]));
        writer.apply_watcher_event(&applied);
        let touched = touched_by(&applied, &store, None);
        assert_eq!(names(&touched), vec![("a".into(), false)]);
        assert!(Arc::ptr_eq(&touched[0].object, &store.state()[0]), "the stored copy, not another");
        let deleted = watcher::Event::Delete(ns("a", &[("x", "1")]));
        writer.apply_watcher_event(&deleted);
        assert_eq!(names(&touched_by(&deleted, &store, None)), vec![("a".into(), true)]);
        assert!(store.state().is_empty());
    }

    #[test]
    fn a_filtered_subscriber_sees_changes_of_what_it_reads_and_every_deletion() {
        let key: fn(&Namespace) -> Option<u64> = crate::watch::labels_or_deletion;
        let mut seen = HashMap::new();
        let touch = |n: Namespace, deleted: bool| Touched { object: Arc::new(n), deleted };
        assert!(when_changed(&mut seen, key, touch(ns("a", &[("x", "1")]), false)).is_some(), "first sight");
        let mut annotated = ns("a", &[("x", "1")]);
        annotated.metadata.annotations = Some([("note".to_owned(), "y".to_owned())].into());
        assert!(when_changed(&mut seen, key, touch(annotated, false)).is_none(), "nothing it reads changed");
        assert!(
            when_changed(&mut seen, key, touch(ns("a", &[("x", "2")]), false)).is_some(),
            "a label changed"
        );
        assert!(when_changed(&mut seen, key, touch(ns("a", &[("x", "2")]), true)).is_some(), "deleted");
        assert!(seen.is_empty(), "a deleted object is forgotten");
        assert!(when_changed(&mut seen, key, touch(ns("a", &[("x", "2")]), false)).is_some(), "made again");
    }

    #[test]
    fn the_client_side_apply_copy_is_not_kept() {
        let mut n = ns("a", &[]);
        n.metadata.annotations = Some(
            [(LAST_APPLIED.to_owned(), "{...}".to_owned()), ("keep".to_owned(), "me".to_owned())].into(),
        );
        strip_last_applied(&mut n);
        assert_eq!(n.metadata.annotations, Some([("keep".to_owned(), "me".to_owned())].into()));
        let mut only = ns("b", &[]);
        only.metadata.annotations = Some([(LAST_APPLIED.to_owned(), "{}".to_owned())].into());
        strip_last_applied(&mut only);
        assert_eq!(only.metadata.annotations, None);
    }

    #[tokio::test]
    async fn a_follower_fills_its_store_and_tells_subscribers_everything_once_it_leads() {
        let (events_tx, events_rx) = unbounded::<Result<watcher::Event<Namespace>, watcher::Error>>();
        let (sub_tx, mut sub_rx) = unbounded::<Touched<Namespace>>();
        let (leading_tx, leading_rx) = tokio::sync::watch::channel(false);
        let writer: Writer<Namespace> = Writer::default();
        let store = writer.as_reader();
        tokio::spawn(follow(events_rx, writer, vec![sub_tx], Vec::new(), leading_rx));
        for event in [
            watcher::Event::Init,
            watcher::Event::InitApply(ns("a", &[])),
            watcher::Event::InitDone,
            watcher::Event::Apply(ns("b", &[])),
        ] {
            events_tx.unbounded_send(Ok(event)).unwrap();
        }
        tokio::time::timeout(Duration::from_secs(5), async {
            while store.state().len() < 2 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .unwrap();
        assert!(sub_rx.try_recv().is_err(), "a follower's subscribers hear nothing");
        leading_tx.send(true).unwrap();
        let mut heard = Vec::new();
        for _ in 0..2 {
            let t = tokio::time::timeout(Duration::from_secs(5), sub_rx.next()).await.unwrap().unwrap();
            heard.push(t);
        }
        assert_eq!(names(&heard), vec![("a".to_owned(), false), ("b".to_owned(), false)]);
        // Then every change, as for a replica that always led.
        events_tx.unbounded_send(Ok(watcher::Event::Delete(ns("a", &[])))).unwrap();
        let t = tokio::time::timeout(Duration::from_secs(5), sub_rx.next()).await.unwrap().unwrap();
        assert_eq!(names(&[t]), vec![("a".to_owned(), true)]);
    }
}
