//! Test fixtures for segments.

use commons_crds::common::{Classification, Sector};
use commons_crds::network_segment::{NetworkSegment, NetworkSegmentSpec, SegmentAdmission};

/// A segment with the given classification and admission rules.
pub fn segment(
    name: &str,
    classification: Classification,
    sectors: &[Sector],
    tenancies: &[&str],
    classifications: &[Classification],
) -> NetworkSegment {
    let mut s = NetworkSegment::new(
        name,
        NetworkSegmentSpec {
            description: format!("{name} segment"),
            classification,
            admission: SegmentAdmission {
                sectors: sectors.to_vec(),
                tenancies: tenancies.iter().map(|t| (*t).to_owned()).collect(),
                classifications: classifications.to_vec(),
            },
            peers: vec![],
            egress: vec![],
            ingress: vec![],
        },
    );
    s.metadata.uid = Some(format!("uid-{name}"));
    s.metadata.generation = Some(1);
    s
}
