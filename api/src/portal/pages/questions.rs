//! The questions of a tenancy request, page by page: what each page asks, how its answers go
//! into the draft, and what must be answered before the API is asked.

use std::collections::BTreeMap;

use commons_crds::common::Sector;

use super::form::Field;
use crate::portal::draft::Draft;

const BASE: &str = "/portal/request-tenancy";

/// A question page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The organisation and the tenancy's name.
    Organisation,
    /// Namespaces and quota.
    Needs,
    /// Classification and sandbox.
    Classification,
    /// Why it is needed.
    Reason,
}

/// The pages, in order.
pub const STEPS: [Step; 4] = [Step::Organisation, Step::Needs, Step::Classification, Step::Reason];

impl Step {
    pub fn slug(self) -> &'static str {
        match self {
            Step::Organisation => "organisation",
            Step::Needs => "needs",
            Step::Classification => "classification",
            Step::Reason => "reason",
        }
    }

    pub fn of(slug: &str) -> Option<Step> {
        STEPS.into_iter().find(|s| s.slug() == slug)
    }

    pub fn heading(self) -> &'static str {
        match self {
            Step::Organisation => "Who is the tenancy for?",
            Step::Needs => "What does the tenancy need?",
            Step::Classification => "How is its data classified?",
            Step::Reason => "Why do you need it?",
        }
    }

    /// Where the page after it is.
    pub fn next(self) -> String {
        let i = STEPS.iter().position(|s| *s == self).unwrap_or(0);
        STEPS.get(i + 1).map_or_else(|| format!("{BASE}/check"), |s| format!("{BASE}/{}", s.slug()))
    }

    /// Where the back link goes.
    pub fn back(self) -> String {
        let i = STEPS.iter().position(|s| *s == self).unwrap_or(0);
        if i == 0 { "/portal/tenancies".to_owned() } else { format!("{BASE}/{}", STEPS[i - 1].slug()) }
    }

    pub fn fields(self, d: &Draft, organisations: &[String]) -> Vec<Field> {
        match self {
            Step::Organisation => vec![
                Field::radios(
                    "organisation",
                    "Organisation",
                    "The organisation whose tenancy it is: one you act for.",
                    organisations.iter().map(|o| (o.clone(), o.clone())).collect(),
                    &d.organisation,
                ),
                Field::text(
                    "display-name",
                    "Organisation name",
                    "As people know it, for example Northshire County Council.",
                    "",
                    &d.display_name,
                )
                .autocomplete("organization"),
                Field::radios(
                    "sector",
                    "Sector",
                    "",
                    Sector::ALL
                        .iter()
                        .map(|s| (s.as_str().to_owned(), sector_label(*s).to_owned()))
                        .collect(),
                    &d.sector,
                ),
                Field::text(
                    "cost-centre",
                    "Cost centre",
                    "Spend is reported against it.",
                    "govuk-input--width-10",
                    &d.cost_centre,
                ),
                Field::text(
                    "contact-email",
                    "Contact email address",
                    "Who the platform team contacts about it.",
                    "",
                    &d.contact_email,
                )
                .autocomplete("email"),
                Field::text(
                    "name",
                    "Tenancy name",
                    "Lower-case letters, numbers and hyphens, up to 40 characters, for example planning-portal.",
                    "govuk-input--width-20",
                    &d.name,
                ),
            ],
            Step::Needs => vec![
                Field::textarea(
                    "namespaces",
                    "Namespaces",
                    "One name per line, for example app and jobs.",
                    &d.namespaces,
                ),
                Field::text(
                    "cpu",
                    "CPU",
                    "In cores across the tenancy, for example 2 or 500m.",
                    "govuk-input--width-5",
                    &d.cpu,
                ),
                Field::text(
                    "memory",
                    "Memory",
                    "Across the tenancy, for example 4Gi.",
                    "govuk-input--width-5",
                    &d.memory,
                ),
                Field::text(
                    "storage",
                    "Storage",
                    "Across the tenancy, for example 20Gi. Enter 0 if none.",
                    "govuk-input--width-5",
                    &d.storage,
                ),
                Field::text(
                    "load-balancers",
                    "Load balancers",
                    "Enter 0 if none.",
                    "govuk-input--width-3",
                    &d.load_balancers,
                )
                .numeric(),
            ],
            Step::Classification => vec![
                Field::radios(
                    "classification",
                    "Classification",
                    "The highest Government Security Classification of the data it will hold.",
                    vec![
                        ("official".into(), "OFFICIAL".into()),
                        ("official-sensitive".into(), "OFFICIAL-SENSITIVE".into()),
                    ],
                    &d.classification,
                ),
                Field::radios(
                    "sandbox",
                    "Is it a sandbox?",
                    "A sandbox is deleted with everything in it when it expires.",
                    vec![("yes".into(), "Yes".into()), ("no".into(), "No".into())],
                    &d.sandbox,
                ),
                Field::text(
                    "sandbox-days",
                    "If it is a sandbox, for how many days?",
                    "For example 30.",
                    "govuk-input--width-3",
                    &d.sandbox_days,
                )
                .numeric(),
            ],
            Step::Reason => vec![Field::textarea(
                "justification",
                "Why your organisation needs it",
                "The platform team reads this when deciding. At least 10 characters.",
                &d.justification,
            )],
        }
    }

    /// Takes this page's answers into the draft.
    pub fn apply(self, d: &mut Draft, form: &BTreeMap<String, String>) {
        let get = |k: &str| form.get(k).cloned().unwrap_or_default();
        match self {
            Step::Organisation => {
                d.organisation = get("organisation");
                d.display_name = get("display-name");
                d.sector = get("sector");
                d.cost_centre = get("cost-centre");
                d.contact_email = get("contact-email");
                d.name = get("name");
            }
            Step::Needs => {
                d.namespaces = get("namespaces");
                d.cpu = get("cpu");
                d.memory = get("memory");
                d.storage = get("storage");
                d.load_balancers = get("load-balancers");
            }
            Step::Classification => {
                d.classification = get("classification");
                d.sandbox = get("sandbox");
                d.sandbox_days = if d.sandbox == "yes" { get("sandbox-days") } else { String::new() };
            }
            Step::Reason => d.justification = get("justification"),
        }
    }

    /// What must be answered before the API is asked (GOV.UK's own wording).
    pub fn missing(self, d: &Draft) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut need = |empty: bool, id: &str, message: &str| {
            if empty {
                out.push((id.to_owned(), message.to_owned()));
            }
        };
        match self {
            Step::Organisation => {
                need(d.organisation.is_empty(), "organisation", "Select the organisation");
                need(d.display_name.trim().is_empty(), "display-name", "Enter the organisation's name");
                need(d.sector.is_empty(), "sector", "Select the sector");
                need(d.cost_centre.trim().is_empty(), "cost-centre", "Enter the cost centre");
                need(d.contact_email.trim().is_empty(), "contact-email", "Enter a contact email address");
                need(d.name.trim().is_empty(), "name", "Enter a name for the tenancy");
            }
            Step::Needs => {
                need(d.namespace_names().is_empty(), "namespaces", "Enter at least one namespace");
                need(d.cpu.trim().is_empty(), "cpu", "Enter the CPU");
                need(d.memory.trim().is_empty(), "memory", "Enter the memory");
                need(d.storage.trim().is_empty(), "storage", "Enter the storage, or 0");
                need(
                    d.load_balancers.trim().is_empty(),
                    "load-balancers",
                    "Enter the number of load balancers, or 0",
                );
            }
            Step::Classification => {
                need(d.classification.is_empty(), "classification", "Select the classification");
                need(d.sandbox.is_empty(), "sandbox", "Select yes if it is a sandbox");
                let days = d.sandbox_days.trim().parse::<u32>().ok().filter(|n| (1..=3650).contains(n));
                need(
                    d.is_sandbox() && days.is_none(),
                    "sandbox-days",
                    "Enter the number of days, from 1 to 3650",
                );
            }
            Step::Reason => need(
                d.justification.trim().chars().count() < 10,
                "justification",
                "Enter why your organisation needs it, in at least 10 characters",
            ),
        }
        out
    }
}

fn sector_label(s: Sector) -> &'static str {
    match s {
        Sector::Education => "Education",
        Sector::Health => "Health",
        Sector::CriminalJustice => "Criminal justice",
        Sector::LocalGovernment => "Local government",
        Sector::WorkAndPensions => "Work and pensions",
        Sector::Defence => "Defence",
        Sector::RevenueAndCustoms => "Revenue and customs",
        Sector::MultiAgency => "Multi-agency",
        Sector::CentralGovernment => "Central government",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pages_follow_each_other_to_the_check_answers_page() {
        assert_eq!(Step::Organisation.next(), "/portal/request-tenancy/needs");
        assert_eq!(Step::Reason.next(), "/portal/request-tenancy/check");
        assert_eq!(Step::Needs.back(), "/portal/request-tenancy/organisation");
        assert_eq!(Step::of("classification"), Some(Step::Classification));
        assert_eq!(Step::of("nothing"), None);
    }

    #[test]
    fn each_page_asks_for_what_is_missing_in_govuk_words() {
        let d = Draft {
            sandbox: "yes".into(),
            sandbox_days: "0".into(),
            classification: "official".into(),
            ..Draft::default()
        };
        assert_eq!(
            Step::Classification.missing(&d),
            [("sandbox-days".to_owned(), "Enter the number of days, from 1 to 3650".to_owned())]
        );
        let mut form = BTreeMap::new();
        form.insert("sandbox".to_owned(), "no".to_owned());
        form.insert("sandbox-days".to_owned(), "12".to_owned());
        form.insert("classification".to_owned(), "official".to_owned());
        let mut d = Draft::default();
        Step::Classification.apply(&mut d, &form);
        assert_eq!(d.sandbox_days, "", "days are kept only for a sandbox");
        assert!(Step::Classification.missing(&d).is_empty());
        assert_eq!(
            Step::Reason.missing(&Draft { justification: "too short".into(), ..Draft::default() }).len(),
            1
        );
    }

    #[test]
    fn every_question_has_a_field_the_api_names() {
        let ids: Vec<&str> = crate::portal::draft::FIELDS.iter().map(|(_, id)| *id).collect();
        for step in STEPS {
            // Whether it is a sandbox is the portal's question; its API field is the expiry.
            for field in
                step.fields(&Draft::default(), &["x".into()]).into_iter().filter(|f| f.id != "sandbox")
            {
                assert!(ids.contains(&field.id), "{} is not mapped from an API field", field.id);
            }
        }
    }
}
