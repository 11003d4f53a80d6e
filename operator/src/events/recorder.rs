//! The one Event recorder of the process: publishes `events.k8s.io/v1` Events, and an Event said
//! again within 6 minutes becomes a series on the first (its count and last time patched), as
//! Kubernetes' own components do.
//!
//! It remembers an Event it published by a 64-bit hash of what it says (type, reason, action, note
//! and the object it is about) with its name, count and time: about 100 bytes each. The recorder of
//! kube-runtime keeps a copy of every whole Event of the last 6 minutes instead (with its key, about
//! a kilobyte each), 3 MB while 1,000 tenancies are being made, a tenth of the operator's heap then
//! (docs/tenancy.md, "Figures"). Two different Events sharing a hash within 6 minutes would make
//! the second a repeat of the first: with a few thousand Events at most in the window, a chance
//! of about 1 in 10^12.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::EventType;

/// How long an Event said again joins the series of the first instead of being published anew.
const SERIES_WINDOW: SignedDuration = SignedDuration::from_mins(6);

/// Publishes Events for every controller (cheap to clone: the memory of recent Events is shared).
#[derive(Clone)]
pub struct Recorder {
    client: Client,
    /// `reportingController`.
    controller: String,
    /// `reportingInstance`: the Pod's name where there is one.
    instance: String,
    recent: Arc<Mutex<Recent>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("controller", &self.controller)
            .field("instance", &self.instance)
            .finish()
    }
}

/// One thing to say about an object.
#[derive(Debug)]
pub struct Occurrence<'a> {
    /// Normal or Warning.
    pub type_: EventType,
    /// Why (a [`super::Reason`]'s text).
    pub reason: &'a str,
    /// What Commons was doing.
    pub action: &'a str,
    /// For a person.
    pub note: &'a str,
    /// The object it is about.
    pub regarding: &'a ObjectReference,
}

impl Occurrence<'_> {
    /// What identifies the Event: the same occurrence again is the same key.
    fn key(&self) -> u64 {
        let mut h = DefaultHasher::new();
        matches!(self.type_, EventType::Warning).hash(&mut h);
        (self.reason, self.action, self.note).hash(&mut h);
        let r = self.regarding;
        (&r.api_version, &r.kind, &r.namespace, &r.name, &r.uid, &r.field_path).hash(&mut h);
        h.finish()
    }
}

impl Recorder {
    /// A recorder reporting as `controller`, from `instance` (the Pod's name) when there is one.
    pub fn new(client: Client, controller: &str, instance: Option<String>) -> Recorder {
        Recorder {
            client,
            controller: controller.to_owned(),
            instance: instance.unwrap_or_else(|| controller.to_owned()),
            recent: Arc::default(),
        }
    }

    /// Publishes `o`: a new Event, or the next of a series when the same was said within 6 minutes.
    pub async fn publish(&self, o: &Occurrence<'_>) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let key = o.key();
        let step = self.recent.lock().unwrap_or_else(PoisonError::into_inner).step(key, now);
        // Events about a cluster-scoped object (a Tenancy) go to `default`, as kubectl looks for them.
        let api: Api<Event> =
            Api::namespaced(self.client.clone(), o.regarding.namespace.as_deref().unwrap_or("default"));
        let (name, count) = match step {
            Step::Repeat { name, count } => {
                let series =
                    serde_json::json!({"series": {"count": count, "lastObservedTime": MicroTime(now)}});
                match api.patch(&name, &PatchParams::default(), &Patch::Merge(&series)).await {
                    Ok(_) => (name, count),
                    // Gone (the apiserver keeps Events an hour, or someone deleted it): anew.
                    Err(kube::Error::Api(s)) if s.code == 404 => (self.create(&api, o, now).await?, 1),
                    Err(e) => return Err(e),
                }
            }
            Step::Create => (self.create(&api, o, now).await?, 1),
        };
        self.recent.lock().unwrap_or_else(PoisonError::into_inner).published(key, &name, count, now);
        Ok(())
    }

    async fn create(
        &self,
        api: &Api<Event>,
        o: &Occurrence<'_>,
        now: Timestamp,
    ) -> Result<String, kube::Error> {
        let event = self.event(o, now);
        let name = event.metadata.name.clone().unwrap_or_default();
        api.create(&PostParams::default(), &event).await?;
        Ok(name)
    }

    fn event(&self, o: &Occurrence<'_>, now: Timestamp) -> Event {
        let about = o.regarding.name.as_deref().unwrap_or(&self.controller);
        Event {
            metadata: ObjectMeta {
                name: Some(format!("{about}.{:x}", now.as_nanosecond())),
                namespace: o.regarding.namespace.clone(),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            type_: Some(if matches!(o.type_, EventType::Warning) { "Warning" } else { "Normal" }.into()),
            reason: Some(o.reason.into()),
            action: Some(o.action.into()),
            note: Some(o.note.into()),
            regarding: Some(o.regarding.clone()),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Event::default()
        }
    }
}

/// The Events published in the last [`SERIES_WINDOW`], by key.
#[derive(Debug, Default)]
struct Recent {
    by_key: HashMap<u64, Published>,
}

#[derive(Debug)]
struct Published {
    name: Box<str>,
    count: i32,
    last: Timestamp,
}

/// What publishing an occurrence takes.
#[derive(Debug, PartialEq)]
enum Step {
    /// A new Event.
    Create,
    /// The `count`th of the series of the Event `name`.
    Repeat { name: String, count: i32 },
}

impl Recent {
    /// Forgets what is older than the window, then decides.
    fn step(&mut self, key: u64, now: Timestamp) -> Step {
        self.by_key.retain(|_, p| p.last + SERIES_WINDOW > now);
        match self.by_key.get(&key) {
            Some(p) => Step::Repeat { name: p.name.to_string(), count: p.count.saturating_add(1) },
            None => Step::Create,
        }
    }

    fn published(&mut self, key: u64, name: &str, count: i32, now: Timestamp) {
        self.by_key.insert(key, Published { name: name.into(), count, last: now });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenancy(name: &str) -> ObjectReference {
        ObjectReference {
            api_version: Some("commons.dev/v1alpha1".into()),
            kind: Some("Tenancy".into()),
            name: Some(name.into()),
            uid: Some(format!("uid-{name}")),
            ..ObjectReference::default()
        }
    }

    fn said<'a>(reason: &'a str, note: &'a str, regarding: &'a ObjectReference) -> Occurrence<'a> {
        Occurrence { type_: EventType::Normal, reason, action: "Reconcile", note, regarding }
    }

    #[test]
    fn the_same_occurrence_is_the_same_key_and_any_difference_another() {
        let (a, b) = (tenancy("a"), tenancy("b"));
        let key = said("Suspended", "n", &a).key();
        assert_eq!(key, said("Suspended", "n", &a).key());
        for other in [said("Resumed", "n", &a), said("Suspended", "m", &a), said("Suspended", "n", &b)] {
            assert_ne!(key, other.key(), "{other:?}");
        }
        let warning = Occurrence { type_: EventType::Warning, ..said("Suspended", "n", &a) };
        assert_ne!(key, warning.key());
        let acting = Occurrence { action: "Admission", ..said("Suspended", "n", &a) };
        assert_ne!(key, acting.key());
    }

    #[test]
    fn an_event_said_again_within_6_minutes_continues_its_series_and_after_them_is_new() {
        let t0: Timestamp = "2026-12-03T10:00:00Z".parse().unwrap();
        let mut recent = Recent::default();
        let table = [
            // (minutes after t0, key, expected step, published count)
            (0, 1, Step::Create, 1),
            (1, 1, Step::Repeat { name: "e1".into(), count: 2 }, 2),
            (1, 2, Step::Create, 1),
            (6, 1, Step::Repeat { name: "e1".into(), count: 3 }, 3),
            // 6 minutes after its last time, key 1 is forgotten; key 2 went long before.
            (12, 1, Step::Create, 1),
            (12, 2, Step::Create, 1),
        ];
        for (minutes, key, want, count) in table {
            let now = t0 + SignedDuration::from_mins(minutes);
            assert_eq!(recent.step(key, now), want, "at +{minutes} min, key {key}");
            recent.published(key, &format!("e{key}"), count, now);
        }
        assert_eq!(recent.by_key.len(), 2);
    }

    #[test]
    fn an_event_names_what_it_is_about_and_who_said_it() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let _guard = runtime.enter();
        let config = kube::Config::new("http://127.0.0.1:1".parse().unwrap());
        let recorder = Recorder::new(Client::try_from(config).unwrap(), "commons", None);
        let about = ObjectReference { namespace: Some("t-app".into()), ..tenancy("t") };
        let now: Timestamp = "2026-12-03T10:00:00Z".parse().unwrap();
        let warning =
            Occurrence { type_: EventType::Warning, ..said("QuotaExhausted", "pods 10 of 10", &about) };
        let e = recorder.event(&warning, now);
        assert_eq!(e.metadata.name.as_deref(), Some(format!("t.{:x}", now.as_nanosecond()).as_str()));
        assert_eq!(e.metadata.namespace.as_deref(), Some("t-app"));
        assert_eq!(e.type_.as_deref(), Some("Warning"));
        assert_eq!((e.reason.as_deref(), e.action.as_deref()), (Some("QuotaExhausted"), Some("Reconcile")));
        assert_eq!(e.note.as_deref(), Some("pods 10 of 10"));
        assert_eq!(e.regarding.as_ref(), Some(&about));
        assert_eq!(e.reporting_controller.as_deref(), Some("commons"));
        assert_eq!(e.reporting_instance.as_deref(), Some("commons"), "the controller when there is no Pod");
        assert_eq!(e.series, None);
    }
}
