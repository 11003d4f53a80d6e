//! Leader election on a coordination Lease: only the replica holding it runs the controllers, the
//! meter, the keepers and the quota webhook; every replica serves the API and readiness.
//!
//! The rules are client-go's: a holder renews every [`Settings::retry`]; a replica that has not
//! renewed within [`Settings::renew_deadline`] stops leading (and Commons starts itself again in
//! place, as a follower: [`crate::restart`]); another replica takes the Lease only when the record it last saw has not changed
//! for the whole [`Settings::duration`], timed by its own clock (never by comparing clocks), so the
//! old holder has stopped `duration - renew_deadline` before anyone else starts. Every write is a
//! replace at the resourceVersion read, so two candidates can never both win one round.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::sync::watch;

/// How a replica takes part in the election.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The Lease's namespace.
    pub namespace: String,
    /// The Lease's name.
    pub name: String,
    /// This replica's identity (its Pod's name in a cluster).
    pub identity: String,
    /// How long a Lease not renewed stays the holder's.
    pub duration: Duration,
    /// How long the holder keeps leading without a successful renewal.
    pub renew_deadline: Duration,
    /// How often the holder renews, and a follower looks again.
    pub retry: Duration,
}

impl Settings {
    /// Client-go's proportions for a Lease of `duration`: renew deadline two thirds of it,
    /// retries every sixth.
    pub fn with_duration(namespace: &str, name: &str, identity: &str, duration: Duration) -> Settings {
        Settings {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            identity: identity.to_owned(),
            duration,
            renew_deadline: duration * 2 / 3,
            retry: (duration / 6).max(Duration::from_millis(200)),
        }
    }
}

/// What the holder and the renewal time of a Lease were when this replica last saw them change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// The holder then (`None`: nobody).
    pub holder: Option<String>,
    /// Its renewal time then, as written.
    pub renewed: Option<String>,
}

impl Seen {
    fn of(spec: Option<&LeaseSpec>) -> Seen {
        Seen {
            holder: spec.and_then(|s| s.holder_identity.clone()).filter(|h| !h.is_empty()),
            renewed: spec.and_then(|s| s.renew_time.as_ref()).map(|t| t.0.to_string()),
        }
    }
}

/// What to do with the Lease as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// It is ours: write a new renewal time.
    Renew,
    /// It is free or expired: write ourselves as the holder.
    Take,
    /// Another replica holds it.
    Follow,
}

/// The step for a Lease whose record is `now_seen`, when this replica saw `before` (and when, by
/// its own clock: `unchanged_for` ago); pure, so the rules are tested by table.
pub fn step(
    me: &str,
    now_seen: &Seen,
    before: Option<&Seen>,
    unchanged_for: Duration,
    duration: Duration,
) -> Step {
    match now_seen.holder.as_deref() {
        Some(holder) if holder == me => Step::Renew,
        None => Step::Take,
        // Another holder: expired only when the very record we saw has not moved for the whole
        // duration, measured from when we first saw it.
        Some(_) if before == Some(now_seen) && unchanged_for >= duration => Step::Take,
        Some(_) => Step::Follow,
    }
}

/// Campaigns for the Lease until `finished` (set once what the leader runs has stopped, so no
/// other replica starts while it still runs; the Lease is then given up): the receiver says
/// whether this replica leads now. Once it has led and stops leading (a renewal missed its
/// deadline, or another replica took over) it never leads again in this process: the receiver
/// then says `false` and the task ends.
pub fn campaign(
    client: Client,
    settings: Settings,
    leading_gauge: prometheus::IntGauge,
    mut finished: watch::Receiver<bool>,
) -> (watch::Receiver<bool>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        let api: Api<Lease> = Api::namespaced(client, &settings.namespace);
        let mut seen: Option<(Seen, Instant)> = None;
        let mut renewed_at: Option<Instant> = None;
        loop {
            let started = Instant::now();
            let budget = round_budget(renewed_at, started, &settings);
            let round = tokio::time::timeout(budget, round(&api, &settings, &mut seen)).await;
            match round {
                Ok(Ok(Some(true))) => {
                    if renewed_at.is_none() {
                        tracing::info!(identity = settings.identity, lease = settings.name, "leading");
                        leading_gauge.set(1);
                        let _ = tx.send(true);
                    }
                    renewed_at = Some(started);
                }
                Ok(Ok(Some(false))) if renewed_at.is_some() => {
                    tracing::error!(identity = settings.identity, "another replica holds the Lease now");
                    break;
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot read or write the leader Lease"),
                Err(_) => tracing::warn!("the leader Lease was not read or written in time"),
            }
            let deadline = renewed_at.map(|at| at + settings.renew_deadline);
            if deadline.is_some_and(|d| Instant::now() >= d) {
                tracing::error!(
                    identity = settings.identity,
                    deadline_seconds = settings.renew_deadline.as_secs_f64(),
                    "the Lease was not renewed within its deadline; stopping leading"
                );
                break;
            }
            let wake = wake_at(renewed_at, Instant::now(), &settings);
            let stopping = tokio::select! {
                () = tokio::time::sleep_until(wake.into()) => false,
                _ = finished.wait_for(|s| *s) => true,
            };
            if stopping {
                if renewed_at.is_some() {
                    release(&api, &settings).await;
                }
                leading_gauge.set(0);
                return;
            }
        }
        leading_gauge.set(0);
        let _ = tx.send(false);
    });
    (rx, task)
}

/// How long the next round may take: while leading, never past the renew deadline.
fn round_budget(renewed_at: Option<Instant>, now: Instant, settings: &Settings) -> Duration {
    match renewed_at {
        Some(at) => settings.retry.min((at + settings.renew_deadline).saturating_duration_since(now)),
        None => settings.retry.max(Duration::from_secs(1)),
    }
}

/// When to start the next round: after `retry`, or at the renew deadline if that comes first.
fn wake_at(renewed_at: Option<Instant>, now: Instant, settings: &Settings) -> Instant {
    let next = now + settings.retry;
    renewed_at.map_or(next, |at| (at + settings.renew_deadline).min(next))
}

/// One read and (when due) one write: `Some(true)` when this replica holds the Lease after it,
/// `Some(false)` when another does, `None` when our write met a conflict (read again next round).
async fn round(
    api: &Api<Lease>,
    settings: &Settings,
    seen: &mut Option<(Seen, Instant)>,
) -> Result<Option<bool>, kube::Error> {
    let Some(mut lease) = api.get_opt(&settings.name).await? else {
        let lease = Lease {
            metadata: ObjectMeta { name: Some(settings.name.clone()), ..ObjectMeta::default() },
            spec: Some(held(None, settings)),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(Some(true)),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(None),
            Err(e) => Err(e),
        };
    };
    let now_seen = Seen::of(lease.spec.as_ref());
    let (before, since) = match seen.take() {
        Some((before, since)) if before == now_seen => (Some(before), since),
        _ => (None, Instant::now()),
    };
    // The longer of ours and the one the holder wrote: a holder with a longer Lease (settings
    // changed during a rollout) is never cut short.
    let written =
        lease.spec.as_ref().and_then(|s| s.lease_duration_seconds).and_then(|d| u64::try_from(d).ok());
    let duration = settings.duration.max(Duration::from_secs(written.unwrap_or(0)));
    let decided = step(&settings.identity, &now_seen, before.as_ref(), since.elapsed(), duration);
    *seen = Some((now_seen, since));
    if decided == Step::Follow {
        return Ok(Some(false));
    }
    lease.spec = Some(held(lease.spec.take(), settings));
    // A replace at the resourceVersion read: of two candidates, one gets 409 Conflict.
    match api.replace(&settings.name, &PostParams::default(), &lease).await {
        Ok(_) => Ok(Some(true)),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(None),
        Err(e) => Err(e),
    }
}

/// The Lease's spec with this replica as the holder, renewed now.
fn held(previous: Option<LeaseSpec>, settings: &Settings) -> LeaseSpec {
    let now = MicroTime(jiff::Timestamp::now());
    let previous = previous.unwrap_or_default();
    let ours = previous.holder_identity.as_deref() == Some(settings.identity.as_str());
    LeaseSpec {
        holder_identity: Some(settings.identity.clone()),
        lease_duration_seconds: Some(i32::try_from(settings.duration.as_secs()).unwrap_or(i32::MAX)),
        acquire_time: if ours { previous.acquire_time.clone() } else { Some(now.clone()) },
        renew_time: Some(now),
        lease_transitions: Some(previous.lease_transitions.unwrap_or(0) + i32::from(!ours)),
        ..previous
    }
}

/// Gives the Lease up at a graceful stop, so a follower takes over at its next look.
async fn release(api: &Api<Lease>, settings: &Settings) {
    let Ok(Some(mut lease)) = api.get_opt(&settings.name).await else { return };
    if lease.spec.as_ref().and_then(|s| s.holder_identity.as_deref()) != Some(settings.identity.as_str()) {
        return;
    }
    if let Some(spec) = lease.spec.as_mut() {
        spec.holder_identity = None;
        spec.renew_time = None;
    }
    match api.replace(&settings.name, &PostParams::default(), &lease).await {
        Ok(_) => tracing::info!(identity = settings.identity, "released the leader Lease"),
        Err(e) => tracing::warn!(error = %e, "cannot release the leader Lease; it expires instead"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(holder: Option<&str>, renewed: &str) -> Seen {
        Seen { holder: holder.map(str::to_owned), renewed: Some(renewed.to_owned()) }
    }

    #[test]
    fn who_takes_the_lease_and_when() {
        let d = Duration::from_secs(15);
        let other = seen(Some("b"), "t1");
        let cases: Vec<(&str, Seen, Option<Seen>, u64, Step)> = vec![
            ("ours: renew", seen(Some("a"), "t1"), None, 0, Step::Renew),
            ("ours, however old: renew", seen(Some("a"), "t0"), Some(seen(Some("a"), "t0")), 99, Step::Renew),
            ("free: take", Seen { holder: None, renewed: None }, None, 0, Step::Take),
            ("another's, first seen now: follow", other.clone(), None, 0, Step::Follow),
            (
                "another's, unchanged for less than the duration: follow",
                other.clone(),
                Some(other.clone()),
                14,
                Step::Follow,
            ),
            (
                "another's, unchanged for the duration: take",
                other.clone(),
                Some(other.clone()),
                15,
                Step::Take,
            ),
            (
                "another's, renewed since: follow",
                seen(Some("b"), "t2"),
                Some(other.clone()),
                60,
                Step::Follow,
            ),
            ("a new holder since: follow", seen(Some("c"), "t1"), Some(other), 60, Step::Follow),
        ];
        for (why, now_seen, before, secs, want) in cases {
            assert_eq!(step("a", &now_seen, before.as_ref(), Duration::from_secs(secs), d), want, "{why}");
        }
    }

    #[test]
    fn a_leader_never_waits_or_tries_past_its_renew_deadline() {
        let s = Settings::with_duration("ns", "l", "a", Duration::from_secs(15));
        let t0 = Instant::now();
        // Rounds failing one after another from a renewal at t0: every round and every wait ends
        // by t0 + 10 s, so the lead is given up by then, a third of the Lease before anyone may
        // take it.
        let mut now = t0;
        while now < t0 + s.renew_deadline {
            now += round_budget(Some(t0), now, &s);
            assert!(now <= t0 + s.renew_deadline, "a round ran past the deadline");
            now = wake_at(Some(t0), now, &s);
            assert!(now <= t0 + s.renew_deadline, "a wait ran past the deadline");
        }
        assert_eq!(now, t0 + s.renew_deadline);
        // A follower's rounds and waits are not bounded by any deadline.
        assert_eq!(round_budget(None, t0, &s), Duration::from_millis(2500));
        assert_eq!(wake_at(None, t0, &s), t0 + s.retry);
    }

    #[test]
    fn taking_counts_a_transition_and_renewing_keeps_the_acquire_time() {
        let s = Settings::with_duration("ns", "l", "a", Duration::from_secs(15));
        let taken = held(
            Some(LeaseSpec {
                holder_identity: Some("b".into()),
                lease_transitions: Some(3),
                ..LeaseSpec::default()
            }),
            &s,
        );
        assert_eq!(taken.holder_identity.as_deref(), Some("a"));
        assert_eq!(taken.lease_transitions, Some(4));
        assert_eq!(taken.lease_duration_seconds, Some(15));
        let renewed = held(Some(taken.clone()), &s);
        assert_eq!(renewed.lease_transitions, Some(4));
        assert_eq!(renewed.acquire_time, taken.acquire_time);
        assert_eq!(s.renew_deadline, Duration::from_secs(10));
        assert!(s.retry < s.renew_deadline);
    }
}
