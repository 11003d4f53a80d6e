//! Which segments a change can affect (pure), so a change re-evaluates only those, not every
//! segment: a segment's membership depends on the tenancies that ask to join it, and its paths
//! on its own members and on the members of the segments it is peered with, either way.

use std::collections::BTreeSet;
use std::sync::Arc;

use commons_crds::network_segment::NetworkSegment;
use commons_crds::tenancy::Tenancy;
use kube::ResourceExt;

/// The segments a change to the tenancy named `tenancy` (asking to join `requested`) can affect:
/// those it asks to join, those that list it as a member or refused it (it may have left), and
/// every segment peered with one of those, in either direction.
pub fn by_tenancy(tenancy: &str, requested: &[String], segments: &[Arc<NetworkSegment>]) -> BTreeSet<String> {
    let mut direct: BTreeSet<String> = requested.iter().cloned().collect();
    for s in segments {
        let listed = s.status.as_ref().is_some_and(|st| {
            st.members.iter().any(|m| m == tenancy) || st.refused.iter().any(|r| r.tenancy == tenancy)
        });
        if listed {
            direct.insert(s.name_any());
        }
    }
    let mut out = direct.clone();
    for s in segments {
        let name = s.name_any();
        if s.spec.peers.iter().any(|p| direct.contains(p)) {
            out.insert(name.clone());
        }
        if direct.contains(&name) {
            out.extend(s.spec.peers.iter().cloned());
        }
    }
    out
}

/// [`by_tenancy`] for a Tenancy object.
pub fn by_tenancy_object(tenancy: &Tenancy, segments: &[Arc<NetworkSegment>]) -> BTreeSet<String> {
    by_tenancy(&tenancy.name_any(), &tenancy.spec.network_segments, segments)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::fixtures::segment;
    use commons_crds::network_segment::RefusedMember;

    fn seg(name: &str, peers: &[&str], members: &[&str], refused: &[&str]) -> Arc<NetworkSegment> {
        let mut s = segment(name, commons_crds::common::Classification::Official, &[], &[], &[]);
        s.spec.peers = peers.iter().map(|p| (*p).to_owned()).collect();
        let status = s.status.get_or_insert_with(Default::default);
        status.members = members.iter().map(|m| (*m).to_owned()).collect();
        status.refused = refused
            .iter()
            .map(|t| RefusedMember { tenancy: (*t).to_owned(), reason: "X".into(), message: String::new() })
            .collect();
        Arc::new(s)
    }

    #[test]
    fn a_tenancy_affects_its_segments_and_their_peers_only() {
        // psn <- hscn (hscn peers psn), secure alone, lab peers secure.
        let segments = vec![
            seg("psn", &[], &["leeds"], &[]),
            seg("hscn", &["psn"], &["trust"], &["school"]),
            seg("secure", &[], &["police"], &[]),
            seg("lab", &["secure"], &[], &[]),
        ];
        let names = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<BTreeSet<String>>();
        let cases: [(&str, &[&str], &[&str]); 5] = [
            ("asks to join psn (hscn peers it)", &["psn"], &["hscn", "psn"]),
            ("a member of hscn asking for nothing now (it left)", &[], &["hscn", "psn"]),
            ("asks for a segment that does not exist yet", &["future"], &["future"]),
            ("refused by hscn", &[], &["hscn", "psn"]),
            ("asks to join lab (which peers secure)", &["lab"], &["lab", "secure"]),
        ];
        let tenancies = ["new", "trust", "newer", "school", "other"];
        for ((what, requested, want), tenancy) in cases.into_iter().zip(tenancies) {
            let requested: Vec<String> = requested.iter().map(|s| (*s).to_owned()).collect();
            assert_eq!(by_tenancy(tenancy, &requested, &segments), names(want), "{what}");
        }
    }
}
