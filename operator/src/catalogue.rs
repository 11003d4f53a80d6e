//! The applications store (pure): the published HostedServices, who provides each and how many
//! organisations use it, from the services, the subscriptions' recorded phases and the tenancies.
//! `commons catalogue` prints it; the REST API serves the same function (operator/src/api_catalogue.rs).

use std::collections::BTreeSet;
use std::sync::Arc;

use commons_crds::hosted_service::HostedService;
use commons_crds::subscription::{Subscription, SubscriptionMode, SubscriptionPhase};
use commons_crds::tenancy::Tenancy;
use kube::ResourceExt;

/// One listing of the catalogue: the API's own type, so `commons catalogue --json` and
/// `GET /v1/catalogue` show the same thing.
pub use commons_api::v1::catalogue::CatalogueEntry as Entry;

/// The catalogue: every published service, sorted by category then title. `tenancy_of` gives
/// the tenancy a namespace belongs to.
pub fn entries(
    hosted: &[Arc<HostedService>],
    subscriptions: &[Arc<Subscription>],
    tenancy_of: impl Fn(&str) -> Option<Arc<Tenancy>>,
) -> Vec<Entry> {
    let mut out: Vec<Entry> = hosted
        .iter()
        .filter_map(|hs| {
            let listing = hs.spec.catalogue.as_ref().filter(|c| c.publish)?;
            let ns = hs.namespace().unwrap_or_default();
            let provider = tenancy_of(&ns);
            let using: Vec<(&Subscription, Option<Arc<Tenancy>>)> = subscriptions
                .iter()
                .filter(|s| {
                    s.spec.service.namespace == ns
                        && s.spec.service.name == hs.name_any()
                        && s.status.as_ref().and_then(|st| st.phase) == Some(SubscriptionPhase::Active)
                })
                .map(|s| (s.as_ref(), tenancy_of(&s.namespace().unwrap_or_default())))
                .collect();
            let tenancies = |mode: SubscriptionMode| -> BTreeSet<String> {
                using
                    .iter()
                    .filter(|(s, _)| s.spec.mode == mode)
                    .filter_map(|(_, t)| t.as_ref().map(|t| t.name_any()))
                    .collect()
            };
            let organisations: BTreeSet<String> = using
                .iter()
                .filter_map(|(_, t)| t.as_ref().map(|t| t.spec.organisation.id.clone()))
                .collect();
            Some(Entry {
                namespace: ns,
                name: hs.name_any(),
                title: listing.title.clone().unwrap_or_else(|| hs.name_any()),
                description: listing.description.clone().unwrap_or_default(),
                category: listing.category.clone(),
                provider: provider.as_ref().map(|t| t.name_any()),
                organisation: provider.as_ref().map(|t| t.spec.organisation.display_name.clone()),
                sector: provider.as_ref().map(|t| t.spec.organisation.sector.as_str().to_owned()),
                classification: hs.spec.classification.as_str().to_owned(),
                ports: hs
                    .spec
                    .ports
                    .iter()
                    .map(|p| format!("{} {}/{}", p.name, p.port, p.protocol.as_str()))
                    .collect(),
                ready: crate::hosted::status::is_ready(hs),
                consumers: tenancies(SubscriptionMode::Shared).len(),
                instances: using.iter().filter(|(s, _)| s.spec.mode == SubscriptionMode::Instance).count(),
                organisations: organisations.len(),
            })
        })
        .collect();
    out.sort_by(|a, b| (&a.category, &a.title, &a.namespace).cmp(&(&b.category, &b.title, &b.namespace)));
    out
}

/// The catalogue as a table a person reads.
pub fn render(entries: &[Entry]) -> String {
    let header = [
        "TITLE",
        "CATEGORY",
        "PROVIDER",
        "SECTOR",
        "CLASSIFICATION",
        "PORTS",
        "READY",
        "SHARED",
        "INSTANCES",
        "ORGANISATIONS",
        "SERVICE",
    ];
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            vec![
                e.title.clone(),
                e.category.clone().unwrap_or_else(|| "-".into()),
                e.organisation.clone().unwrap_or_else(|| "-".into()),
                e.sector.clone().unwrap_or_else(|| "-".into()),
                e.classification.clone(),
                if e.ports.is_empty() { "-".into() } else { e.ports.join(", ") },
                if e.ready { "yes".into() } else { "no".into() },
                e.consumers.to_string(),
                e.instances.to_string(),
                e.organisations.to_string(),
                format!("{}/{}", e.namespace, e.name),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).chain([header[i].len()]).max().unwrap_or(0))
        .collect();
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut out = vec![line(header.iter().map(|h| (*h).to_owned()).collect())];
    out.extend(rows.into_iter().map(line));
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hosted::fixtures::hosted;
    use crate::subscription::fixtures::subscription;
    use crate::tenancy::fixtures::TenancyBuilder;
    use commons_crds::hosted_service::Catalogue;
    use commons_crds::subscription::SubscriptionStatus;

    fn published(name: &str, ns: &str, title: &str) -> Arc<HostedService> {
        let mut hs = hosted(name, ns).port("http", 80, None).build();
        hs.spec.catalogue = Some(Catalogue {
            publish: true,
            title: Some(title.into()),
            description: Some(format!("{title} for councils")),
            category: Some("hr".into()),
        });
        Arc::new(hs)
    }

    fn with_phase(mut s: Subscription, phase: SubscriptionPhase) -> Arc<Subscription> {
        s.status = Some(SubscriptionStatus { phase: Some(phase), ..SubscriptionStatus::default() });
        Arc::new(s)
    }

    #[test]
    fn the_catalogue_lists_published_services_with_who_uses_them() {
        let services = vec![
            published("payroll", "north-hr", "Payroll"),
            published("rota", "north-hr", "Staff rota"),
            Arc::new(hosted("internal", "north-hr").build()),
        ];
        let subs = vec![
            with_phase(
                subscription("payroll", "south-apps", "north-hr", "payroll").build(),
                SubscriptionPhase::Active,
            ),
            with_phase(
                subscription("payroll", "south-web", "north-hr", "payroll").build(),
                SubscriptionPhase::Active,
            ),
            with_phase(
                subscription("payroll", "west-apps", "north-hr", "payroll").build(),
                SubscriptionPhase::Active,
            ),
            with_phase(
                subscription("payroll", "east-apps", "north-hr", "payroll").build(),
                SubscriptionPhase::Pending,
            ),
            with_phase(
                subscription("my-payroll", "east-web", "north-hr", "payroll").instance().build(),
                SubscriptionPhase::Active,
            ),
        ];
        let tenancy_of = |ns: &str| {
            let name = ns.split('-').next().unwrap();
            Some(Arc::new(TenancyBuilder::new(name).build()))
        };
        let list = entries(&services, &subs, tenancy_of);
        assert_eq!(list.len(), 2, "only published services are listed");
        let payroll = &list[0];
        assert_eq!((payroll.title.as_str(), payroll.provider.as_deref()), ("Payroll", Some("north")));
        assert_eq!(payroll.organisation.as_deref(), Some("north council"));
        assert_eq!(payroll.sector.as_deref(), Some("local-government"));
        assert_eq!((payroll.consumers, payroll.instances, payroll.organisations), (2, 1, 3));
        assert_eq!(payroll.ports, ["http 80/TCP"]);
        assert_eq!((list[1].consumers, list[1].instances, list[1].organisations), (0, 0, 0));
        let table = render(&list);
        assert!(table.lines().next().unwrap().starts_with("TITLE"));
        assert!(table.contains("north-hr/payroll"), "{table}");
    }
}
