//! Which spans are open and what each observation changes (pure): the meter's decisions, apart
//! from watching the cluster and writing the ledger. Every rule of docs/metering.md, "What is
//! billed, from when to when", that concerns opening and closing is here. Spans are kept alike
//! whatever their kind and whoever pays: a node's (charged to no tenancy: its attribution is empty)
//! and a share of a shared service's cost (whose `share_weight` is what it holds) open, change and
//! close by the same rules as a pod's.

use std::collections::HashMap;

use crate::ledger::{Attribution, Close, Held, Interval, Kind, Write};

/// When an object is billable, as its own record shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Span {
    /// Not billable (a pod that never ran, a Service that is not a load balancer).
    Never,
    /// Billable since this instant and still.
    Since(i64),
    /// Billable over this span, which has ended.
    Ended {
        /// From.
        start_ms: i64,
        /// Until.
        end_ms: i64,
    },
}

/// One object as the meter sees it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    /// Its kind.
    pub kind: Kind,
    /// Its uid.
    pub uid: String,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Who it is charged to.
    pub attribution: Attribution,
    /// What it holds now.
    pub held: Held,
    /// When it is billable.
    pub span: Span,
}

/// An open span, as far as the meter needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Open {
    key: String,
    kind: Kind,
    namespace: String,
    name: String,
    start_ms: i64,
    held: Held,
    attribution: Attribution,
}

/// The open spans, one per object at most, and the objects whose span ended while they still
/// exist (so a finished pod is not opened again).
#[derive(Debug, Default)]
pub struct Tracker {
    since_ms: i64,
    open: HashMap<String, Open>,
    ended: HashMap<String, i64>,
}

impl Tracker {
    /// A tracker that bills nothing before `since_ms` (when metering began), resuming the spans
    /// the ledger holds open.
    pub fn new(since_ms: i64, open: Vec<Interval>) -> Tracker {
        let open = open
            .into_iter()
            .map(|i| {
                let o = Open {
                    key: i.key,
                    kind: i.kind,
                    namespace: i.namespace,
                    name: i.name,
                    start_ms: i.start_ms,
                    held: i.held,
                    attribution: i.attribution,
                };
                (i.uid, o)
            })
            .collect();
        Tracker { since_ms, open, ended: HashMap::new() }
    }

    /// How many spans are open.
    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    /// The uids of the objects of `kind` with an open span.
    pub fn open_of(&self, kind: Kind) -> Vec<String> {
        self.open.iter().filter(|(_, o)| o.kind == kind).map(|(uid, _)| uid.clone()).collect()
    }

    /// What an observation at `now_ms` changes. A span opens when the object becomes billable
    /// (never before metering began); a change in what it holds or who it is charged to closes
    /// the span at `now_ms` and opens the next; the span closes at the object's own recorded end.
    pub fn observe(&mut self, o: Observation, now_ms: i64) -> Vec<Write> {
        let mut writes = Vec::new();
        // Holding nothing (a claim without a storage request) is billed as nothing: no span.
        let span = if o.held.is_empty() { Span::Never } else { o.span };
        match span {
            Span::Never => {
                if let Some(open) = self.open.remove(&o.uid) {
                    writes.push(close(open, now_ms, false));
                    self.ended.insert(o.uid, now_ms);
                }
            }
            Span::Since(start) => {
                if let Some(open) = self.open.get(&o.uid) {
                    if open.held == o.held && open.attribution == o.attribution {
                        return writes;
                    }
                    if let Some(open) = self.open.remove(&o.uid) {
                        writes.push(close(open, now_ms, false));
                    }
                    writes.push(self.open(o, now_ms, None));
                } else {
                    // An object billable again after a span ended (a Service made a load
                    // balancer once more) starts again where it was last seen ending.
                    let after = self.ended.get(&o.uid).copied().unwrap_or(i64::MIN);
                    let start = start.max(self.since_ms).max(after);
                    writes.push(self.open(o, start, None));
                }
            }
            Span::Ended { start_ms, end_ms } => {
                if let Some(open) = self.open.remove(&o.uid) {
                    writes.push(close(open, end_ms, false));
                    self.ended.insert(o.uid, end_ms);
                } else if !self.ended.contains_key(&o.uid) {
                    // Learned of after it ended (Commons was not running meanwhile): recorded
                    // whole, from its own timestamps, as far as metering had begun.
                    let start = start_ms.max(self.since_ms);
                    let uid = o.uid.clone();
                    if end_ms > start {
                        writes.push(self.open(o, start, Some(end_ms)));
                        self.open.remove(&uid);
                    }
                    self.ended.insert(uid, end_ms);
                }
            }
        }
        writes
    }

    /// A tenancy's organisation (id, name, sector) or cost centre changed: each of its open spans
    /// whose attribution `update` changes closes at `now_ms`, and the next opens then, holding the
    /// same.
    pub fn reattribute(
        &mut self,
        tenancy: &str,
        update: impl Fn(&Attribution) -> Attribution,
        now_ms: i64,
    ) -> Vec<Write> {
        let moved: Vec<(String, Attribution)> = self
            .open
            .iter()
            .filter(|(_, o)| o.attribution.tenancy == tenancy)
            .filter_map(|(uid, o)| {
                let next = update(&o.attribution);
                (next != o.attribution).then(|| (uid.clone(), next))
            })
            .collect();
        let mut writes = Vec::new();
        for (uid, attribution) in moved {
            if let Some(open) = self.open.remove(&uid) {
                let o = Observation {
                    kind: open.kind,
                    uid,
                    namespace: open.namespace.clone(),
                    name: open.name.clone(),
                    attribution,
                    held: open.held,
                    span: Span::Since(now_ms),
                };
                writes.push(close(open, now_ms, false));
                writes.push(self.open(o, now_ms, None));
            }
        }
        writes
    }

    /// The object is gone: its span (if open) closes at `end_ms`, marked `estimated` when that is
    /// the last time it was seen rather than its observed deletion.
    pub fn gone(&mut self, uid: &str, end_ms: i64, estimated: bool) -> Vec<Write> {
        self.ended.remove(uid);
        self.open.remove(uid).map(|open| close(open, end_ms, estimated)).into_iter().collect()
    }

    fn open(&mut self, o: Observation, start_ms: i64, end_ms: Option<i64>) -> Write {
        let key = Interval::key_of(o.kind, &o.uid, start_ms);
        let interval = Interval {
            key: key.clone(),
            kind: o.kind,
            uid: o.uid.clone(),
            namespace: o.namespace.clone(),
            name: o.name.clone(),
            attribution: o.attribution.clone(),
            held: o.held,
            start_ms,
            end_ms,
            estimated: false,
            recorded_ms: 0,
            end_recorded_ms: None,
        };
        let open = Open {
            key,
            kind: o.kind,
            namespace: o.namespace,
            name: o.name,
            start_ms,
            held: o.held,
            attribution: o.attribution,
        };
        self.open.insert(o.uid, open);
        Write::Open(Box::new(interval))
    }
}

/// The close of a span, never before its start.
fn close(open: Open, end_ms: i64, estimated: bool) -> Write {
    Write::Close(Close { key: open.key, end_ms: end_ms.max(open.start_ms), estimated })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(cpu_milli: i64) -> Held {
        Held { cpu_milli, memory_milli: 128 << 20, ..Held::default() }
    }

    fn pod(uid: &str, cpu: i64, span: Span) -> Observation {
        Observation {
            kind: Kind::Pod,
            uid: uid.into(),
            namespace: "t-app".into(),
            name: uid.into(),
            attribution: Attribution { tenancy: "t".into(), ..Attribution::default() },
            held: held(cpu),
            span,
        }
    }

    fn opened(w: &Write) -> (&str, i64, Option<i64>) {
        match w {
            Write::Open(i) => (i.key.as_str(), i.start_ms, i.end_ms),
            other => panic!("expected an open, got {other:?}"),
        }
    }

    fn closed(w: &Write) -> (&str, i64, bool) {
        match w {
            Write::Close(c) => (c.key.as_str(), c.end_ms, c.estimated),
            other => panic!("expected a close, got {other:?}"),
        }
    }

    #[test]
    fn a_pod_opens_at_its_start_and_closes_at_its_end_once() {
        let mut t = Tracker::new(0, vec![]);
        let w = t.observe(pod("a", 100, Span::Since(1_000)), 5_000);
        assert_eq!(opened(&w[0]), ("pod/a/1000", 1_000, None));
        assert!(t.observe(pod("a", 100, Span::Since(1_000)), 6_000).is_empty(), "nothing changed");
        let w = t.observe(pod("a", 100, Span::Ended { start_ms: 1_000, end_ms: 9_000 }), 10_000);
        assert_eq!(closed(&w[0]), ("pod/a/1000", 9_000, false));
        assert!(t.observe(pod("a", 100, Span::Ended { start_ms: 1_000, end_ms: 9_000 }), 11_000).is_empty());
        assert!(t.gone("a", 12_000, false).is_empty(), "already closed at its recorded end");
    }

    #[test]
    fn a_resize_closes_the_span_and_opens_the_next_at_the_instant_it_is_seen() {
        let mut t = Tracker::new(0, vec![]);
        t.observe(pod("a", 100, Span::Since(1_000)), 1_500);
        let w = t.observe(pod("a", 250, Span::Since(1_000)), 4_000);
        assert_eq!(closed(&w[0]), ("pod/a/1000", 4_000, false));
        assert_eq!(opened(&w[1]), ("pod/a/4000", 4_000, None));
        let w = t.gone("a", 7_000, false);
        assert_eq!(closed(&w[0]), ("pod/a/4000", 7_000, false));
    }

    #[test]
    fn a_change_of_who_pays_starts_a_new_span() {
        let mut t = Tracker::new(0, vec![]);
        t.observe(pod("a", 100, Span::Since(1_000)), 1_000);
        let mut moved = pod("a", 100, Span::Since(1_000));
        moved.attribution.cost_centre = "NEW-CC".into();
        let w = t.observe(moved, 3_000);
        assert_eq!((closed(&w[0]).1, opened(&w[1]).1), (3_000, 3_000));
    }

    #[test]
    fn a_tenancy_whose_organisation_changes_starts_new_spans_for_what_it_holds() {
        let mut t = Tracker::new(0, vec![]);
        t.observe(pod("a", 100, Span::Since(1_000)), 1_000);
        t.observe(pod("b", 200, Span::Since(1_000)), 1_000);
        let mut other = pod("c", 100, Span::Since(1_000));
        other.attribution.tenancy = "other".into();
        t.observe(other, 1_000);
        let rename = |a: &Attribution| Attribution { organisation: "northshire".into(), ..a.clone() };
        let w = t.reattribute("t", rename, 5_000);
        assert_eq!(w.len(), 4, "a and b close and reopen; c is another tenancy's: {w:?}");
        assert!(w.iter().all(|w| match w {
            Write::Close(c) => c.end_ms == 5_000,
            Write::Open(i) =>
                i.start_ms == 5_000 && i.attribution.organisation == "northshire" && i.held.cpu_milli > 0,
        }));
        assert!(t.reattribute("t", rename, 6_000).is_empty(), "already attributed so");
    }

    #[test]
    fn an_object_holding_nothing_is_not_billed() {
        let mut t = Tracker::new(0, vec![]);
        let mut empty = pod("a", 0, Span::Since(1_000));
        empty.held = Held::default();
        assert!(t.observe(empty, 2_000).is_empty());
    }

    #[test]
    fn nothing_before_metering_began_is_billed() {
        let mut t = Tracker::new(5_000, vec![]);
        assert_eq!(opened(&t.observe(pod("a", 100, Span::Since(1_000)), 6_000)[0]).1, 5_000);
        let w = t.observe(pod("b", 100, Span::Ended { start_ms: 1_000, end_ms: 4_000 }), 6_000);
        assert!(w.is_empty(), "ended before metering began");
        let w = t.observe(pod("c", 100, Span::Ended { start_ms: 1_000, end_ms: 8_000 }), 9_000);
        assert_eq!(opened(&w[0]), ("pod/c/5000", 5_000, Some(8_000)));
        assert_eq!(t.open_count(), 1, "c is recorded whole, not left open");
    }

    #[test]
    fn a_restart_resumes_open_spans_with_their_original_start() {
        let mut first = Tracker::new(0, vec![]);
        let Write::Open(open) = first.observe(pod("a", 100, Span::Since(1_000)), 1_000).remove(0) else {
            panic!("expected an open")
        };
        let mut t = Tracker::new(0, vec![*open]);
        assert!(t.observe(pod("a", 100, Span::Since(1_000)), 50_000).is_empty());
        assert_eq!(t.open_of(Kind::Pod), vec!["a".to_owned()]);
        assert!(t.open_of(Kind::Claim).is_empty());
        let w = t.gone("a", 40_000, true);
        assert_eq!(closed(&w[0]), ("pod/a/1000", 40_000, true));
    }

    #[test]
    fn a_close_is_never_before_the_start() {
        let mut t = Tracker::new(0, vec![]);
        t.observe(pod("a", 100, Span::Since(10_000)), 10_000);
        assert_eq!(closed(&t.gone("a", 2_000, true)[0]).1, 10_000);
    }

    #[test]
    fn a_span_charged_to_no_tenancy_is_kept_like_any_other() {
        let node = |cpu: i64| Observation {
            kind: Kind::Node,
            uid: "n1".into(),
            namespace: String::new(),
            name: "n1".into(),
            attribution: Attribution::default(),
            held: held(cpu),
            span: Span::Since(1_000),
        };
        let mut t = Tracker::new(0, vec![]);
        let w = t.observe(node(4_000), 1_000);
        assert_eq!(opened(&w[0]), ("node/n1/1000", 1_000, None));
        let w = t.observe(node(3_000), 5_000);
        assert_eq!((closed(&w[0]).1, opened(&w[1]).0), (5_000, "node/n1/5000"));
        let renamed = |a: &Attribution| Attribution { organisation: "x".into(), ..a.clone() };
        assert!(t.reattribute("t", renamed, 6_000).is_empty(), "no tenancy's change moves it");
        assert_eq!(closed(&t.gone("n1", 9_000, false)[0]), ("node/n1/5000", 9_000, false));
    }

    #[test]
    fn a_load_balancer_made_again_starts_where_the_last_one_ended() {
        let mut lb = pod("s", 0, Span::Since(1_000));
        lb.kind = Kind::LoadBalancer;
        let mut t = Tracker::new(0, vec![]);
        t.observe(lb.clone(), 1_000);
        let mut plain = lb.clone();
        plain.span = Span::Never;
        assert_eq!(closed(&t.observe(plain.clone(), 5_000)[0]).1, 5_000);
        let mut again = lb.clone();
        again.span = Span::Since(8_000);
        assert_eq!(opened(&t.observe(again, 8_000)[0]), ("load-balancer/s/8000", 8_000, None));
        // Whatever the observation says, a new span never overlaps the one that ended.
        t.observe(plain, 9_000);
        assert_eq!(opened(&t.observe(lb, 9_500)[0]), ("load-balancer/s/9000", 9_000, None));
    }
}
