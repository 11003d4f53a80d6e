//! A tenancy request being filled in, kept in the person's session between the question pages,
//! and the API body it becomes. Before the last page, the questions not yet answered are filled
//! with values the API accepts, so that a dry run of the API's own validation can check the pages
//! answered so far and name their fields.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The answers so far, as typed (the API checks them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Draft {
    /// The tenancy's name.
    pub name: String,
    /// The organisation's id (one the person acts for).
    pub organisation: String,
    /// Its name as people know it.
    pub display_name: String,
    /// Its sector (the CRD's wire form).
    pub sector: String,
    /// Its cost centre.
    pub cost_centre: String,
    /// Who to contact about it.
    pub contact_email: String,
    /// Namespace names, one per line.
    pub namespaces: String,
    /// CPU across the tenancy.
    pub cpu: String,
    /// Memory across the tenancy.
    pub memory: String,
    /// Storage across the tenancy.
    pub storage: String,
    /// Load balancers.
    pub load_balancers: String,
    /// `official` or `official-sensitive`.
    pub classification: String,
    /// `yes` or `no`.
    pub sandbox: String,
    /// Days a sandbox lasts.
    pub sandbox_days: String,
    /// Why it is needed.
    pub justification: String,
    /// The idempotency key of its submission: submitting twice makes one request.
    pub attempt: String,
    /// When that submission was first made (milliseconds): a retry sends the same body.
    pub attempt_at_ms: i64,
}

/// The API's field paths and the form fields that answer them.
pub const FIELDS: [(&str, &str); 14] = [
    ("tenancyName", "name"),
    ("tenancy.organisation.id", "organisation"),
    ("tenancy.organisation.displayName", "display-name"),
    ("tenancy.organisation.sector", "sector"),
    ("tenancy.organisation.costCentre", "cost-centre"),
    ("tenancy.organisation.contactEmail", "contact-email"),
    ("tenancy.namespaces", "namespaces"),
    ("tenancy.quota.cpu", "cpu"),
    ("tenancy.quota.memory", "memory"),
    ("tenancy.quota.storage", "storage"),
    ("tenancy.quota.loadBalancers", "load-balancers"),
    ("tenancy.classification", "classification"),
    ("tenancy.expiresAt", "sandbox-days"),
    ("justification", "justification"),
];

/// The form field an API error names, if any (`tenancy.namespaces[0].name` is `namespaces`).
pub fn form_field(api_field: &str) -> Option<&'static str> {
    FIELDS
        .iter()
        .find(|(path, _)| {
            api_field == *path
                || api_field
                    .strip_prefix(path)
                    .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
        })
        .map(|(_, id)| *id)
}

impl Draft {
    /// The namespace names given.
    pub fn namespace_names(&self) -> Vec<String> {
        self.namespaces
            .split(|c: char| c == '\n' || c == ',' || c.is_whitespace())
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Whether it is a sandbox.
    pub fn is_sandbox(&self) -> bool {
        self.sandbox == "yes"
    }

    /// The body of `POST /v1/tenancy-requests`, owned by `owner` (the person's Kubernetes user),
    /// a sandbox expiring from `now`. Unless `complete`, unanswered questions get accepted values.
    pub fn body(&self, owner: &str, now: jiff::Timestamp, complete: bool) -> Value {
        let or = |given: &str, stand_in: &str| {
            if given.trim().is_empty() && !complete { stand_in.to_owned() } else { given.trim().to_owned() }
        };
        let mut namespaces: Vec<Value> =
            self.namespace_names().into_iter().map(|n| json!({"name": n})).collect();
        if namespaces.is_empty() && !complete {
            namespaces.push(json!({"name": "app"}));
        }
        let mut quota = serde_json::Map::new();
        for (key, given, stand_in) in [
            ("cpu", &self.cpu, "1"),
            ("memory", &self.memory, "1Gi"),
            ("storage", &self.storage, "1Gi"),
            ("loadBalancers", &self.load_balancers, "0"),
        ] {
            let value = or(given, stand_in);
            if value.is_empty() {
                continue;
            }
            // Load balancers are a count; anything else is a quantity string.
            let value = match (key, value.parse::<u32>()) {
                ("loadBalancers", Ok(n)) => json!(n),
                _ => json!(value),
            };
            quota.insert(key.to_owned(), value);
        }
        let mut tenancy = json!({
            "organisation": {
                "id": self.organisation,
                "displayName": self.display_name.trim(),
                "sector": self.sector,
                "costCentre": self.cost_centre.trim(),
                "contactEmail": self.contact_email.trim(),
            },
            "classification": or(&self.classification, "official"),
            "owners": [{"kind": "User", "name": owner}],
            "namespaces": namespaces,
            "quota": quota,
        });
        if self.is_sandbox() {
            let days: i64 = self.sandbox_days.trim().parse().unwrap_or(0);
            let at = now + jiff::SignedDuration::from_hours(24 * days.clamp(0, 3650));
            tenancy["expiresAt"] = json!(at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
            tenancy["deletionProtection"] = json!(false);
        }
        json!({
            "tenancyName": self.name.trim(),
            "tenancy": tenancy,
            "justification": or(&self.justification, "answered on a later page"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> Draft {
        Draft {
            name: "planning".into(),
            organisation: "northshire-county-council".into(),
            display_name: "Northshire County Council".into(),
            sector: "local-government".into(),
            cost_centre: "NCC-1".into(),
            contact_email: "it@northshire.example.gov.uk".into(),
            ..Draft::default()
        }
    }

    #[test]
    fn api_errors_are_shown_against_the_question_that_answers_them() {
        assert_eq!(form_field("tenancy.quota.cpu"), Some("cpu"));
        assert_eq!(form_field("tenancy.namespaces[0].name"), Some("namespaces"));
        assert_eq!(form_field("tenancy.namespaces"), Some("namespaces"));
        assert_eq!(form_field("tenancyName"), Some("name"));
        assert_eq!(form_field("tenancy.quota.cpux"), None);
        assert_eq!(form_field("tenancy.owners[0].name"), None);
    }

    #[test]
    fn unanswered_questions_are_stood_in_for_until_the_request_is_complete() {
        let now: jiff::Timestamp = "2026-12-03T00:00:00Z".parse().unwrap();
        let partial = draft().body("oidc:nora", now, false);
        assert_eq!(partial["tenancy"]["namespaces"], json!([{"name": "app"}]));
        assert_eq!(partial["tenancy"]["quota"]["loadBalancers"], json!(0));
        assert_eq!(partial["tenancy"]["owners"][0]["name"], "oidc:nora");
        let complete = draft().body("oidc:nora", now, true);
        assert_eq!(complete["tenancy"]["namespaces"], json!([]));
        assert_eq!(complete["tenancy"]["quota"], json!({}));
        assert_eq!(complete["justification"], "");
    }

    #[test]
    fn a_sandbox_expires_after_its_days_and_is_not_protected_from_deletion() {
        let now: jiff::Timestamp = "2026-12-03T10:00:00Z".parse().unwrap();
        let mut d = draft();
        d.namespaces = "app\nweb, jobs".into();
        d.sandbox = "yes".into();
        d.sandbox_days = "30".into();
        d.load_balancers = "2".into();
        let body = d.body("oidc:nora", now, true);
        assert_eq!(body["tenancy"]["expiresAt"], "2027-01-02T10:00:00Z");
        assert_eq!(body["tenancy"]["deletionProtection"], false);
        assert_eq!(
            body["tenancy"]["namespaces"],
            json!([{"name": "app"}, {"name": "web"}, {"name": "jobs"}])
        );
        assert_eq!(body["tenancy"]["quota"]["loadBalancers"], json!(2));
    }
}
