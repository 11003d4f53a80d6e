//! Whether a NetworkSegment admits a Tenancy (pure; shared by the Tenancy and segment controllers,
//! so neither depends on the other).

use commons_crds::network_segment::NetworkSegment;
use commons_crds::tenancy::Tenancy;
use kube::ResourceExt;

/// The outcome of a tenancy asking to join a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The tenancy is a member.
    Admitted,
    /// The tenancy is refused.
    Refused {
        /// A machine-readable reason.
        reason: &'static str,
        /// A human-readable explanation.
        message: String,
    },
}

/// Decides whether `segment` admits `tenancy`, by the segment's admission rules: a tenancy named
/// in `admission.tenancies` is admitted; otherwise its sector must be listed (any sector when the
/// list is empty) and its classification allowed (listed in `admission.classifications`, or, when
/// that is empty, at or above the segment's own classification).
pub fn decide(segment: &NetworkSegment, tenancy: &Tenancy) -> Decision {
    let rules = &segment.spec.admission;
    let name = tenancy.name_any();
    if rules.tenancies.contains(&name) {
        return Decision::Admitted;
    }
    let sector = tenancy.spec.organisation.sector;
    if !rules.sectors.is_empty() && !rules.sectors.contains(&sector) {
        let allowed: Vec<String> = rules.sectors.iter().map(ToString::to_string).collect();
        return Decision::Refused {
            reason: "SectorNotAdmitted",
            message: format!(
                "segment {} admits the sectors {}; tenancy {name} is {sector}",
                segment.name_any(),
                allowed.join(", ")
            ),
        };
    }
    let class = tenancy.spec.classification;
    let class_ok = if rules.classifications.is_empty() {
        class >= segment.spec.classification
    } else {
        rules.classifications.contains(&class)
    };
    if !class_ok {
        return Decision::Refused {
            reason: "ClassificationNotAdmitted",
            message: format!(
                "segment {} is {} and does not admit {class} tenancies; tenancy {name} is {class}",
                segment.name_any(),
                segment.spec.classification
            ),
        };
    }
    Decision::Admitted
}

/// Whether `tenancy` asked to join `segment`.
pub fn requested(segment: &NetworkSegment, tenancy: &Tenancy) -> bool {
    let name = segment.name_any();
    tenancy.spec.network_segments.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::fixtures::segment;
    use crate::tenancy::fixtures::TenancyBuilder;
    use commons_crds::common::{Classification, Sector};

    #[test]
    fn admission_by_table() {
        let council = TenancyBuilder::new("council").build();
        let mut trust = TenancyBuilder::new("trust").build();
        trust.spec.organisation.sector = Sector::Health;
        let mut sensitive = TenancyBuilder::new("police").build();
        sensitive.spec.organisation.sector = Sector::CriminalJustice;
        sensitive.spec.classification = Classification::OfficialSensitive;

        let open = segment("psn", Classification::Official, &[], &[], &[]);
        let health_only = segment("hscn", Classification::Official, &[Sector::Health], &[], &[]);
        let high = segment("secure", Classification::OfficialSensitive, &[], &[], &[]);
        let high_named = segment("secure2", Classification::OfficialSensitive, &[], &["council"], &[]);
        let high_official =
            segment("secure3", Classification::OfficialSensitive, &[], &[], &[Classification::Official]);

        let cases = [
            (&open, &council, None),
            (&open, &sensitive, None),
            (&health_only, &trust, None),
            (&health_only, &council, Some("SectorNotAdmitted")),
            (&high, &council, Some("ClassificationNotAdmitted")),
            (&high, &sensitive, None),
            (&high_named, &council, None),
            (&high_official, &council, None),
            (&high_official, &sensitive, Some("ClassificationNotAdmitted")),
        ];
        for (seg, t, want) in cases {
            let got = match decide(seg, t) {
                Decision::Admitted => None,
                Decision::Refused { reason, .. } => Some(reason),
            };
            assert_eq!(got, want, "{} / {}", seg.name_any(), t.name_any());
        }
    }
}
