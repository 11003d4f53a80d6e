//! Asking for more quota for one of your tenancies (`POST /v1/tenancies/{name}/quota-requests`):
//! the limits to change (the rest stay) and why, decided like a request for a tenancy.

use std::collections::BTreeMap;

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::form::{Field, QuestionPage, with_errors};
use crate::auth::http::percent;
use crate::portal::Served;
use crate::portal::call::call;
use crate::portal::chrome::{Chrome, render};
use crate::portal::session;
use crate::portal::signed::SignedIn;

const SECTION: &str = "/portal/tenancies";

/// The form's limits: `(field id, API key)`.
const LIMITS: [(&str, &str); 4] =
    [("cpu", "cpu"), ("memory", "memory"), ("storage", "storage"), ("load-balancers", "loadBalancers")];

fn page(chrome: Chrome, tenancy: &str, form: &BTreeMap<String, String>, attempt: &str) -> QuestionPage {
    let value = |k: &str| form.get(k).cloned().unwrap_or_default();
    QuestionPage {
        chrome,
        caption: format!("Tenancy {tenancy}"),
        heading: "Ask for more quota".into(),
        action: format!("/portal/tenancies/{}/more-quota", percent(tenancy)),
        back: format!("/portal/tenancies/{}", percent(tenancy)),
        fields: vec![
            Field::text(
                "cpu",
                "CPU",
                "The new limit across the tenancy, for example 8. Leave blank to keep it.",
                "govuk-input--width-5",
                &value("cpu"),
            ),
            Field::text(
                "memory",
                "Memory",
                "For example 16Gi. Leave blank to keep it.",
                "govuk-input--width-5",
                &value("memory"),
            ),
            Field::text(
                "storage",
                "Storage",
                "For example 100Gi. Leave blank to keep it.",
                "govuk-input--width-5",
                &value("storage"),
            ),
            Field::text(
                "load-balancers",
                "Load balancers",
                "Leave blank to keep it.",
                "govuk-input--width-3",
                &value("load-balancers"),
            )
            .numeric(),
            Field::textarea(
                "justification",
                "Why your organisation needs it",
                "The platform team reads this when deciding. At least 10 characters.",
                &value("justification"),
            ),
        ],
        hidden: vec![("attempt".into(), attempt.to_owned())],
    }
}

/// `GET /portal/tenancies/{name}/more-quota`: for a tenancy the API shows the person (another
/// organisation's is "Page not found", as the API answers).
pub async fn ask(State(served): State<Served>, signed: SignedIn, Path(name): Path<String>) -> Response {
    let chrome = Chrome::signed_in(&signed.session.name, &signed.session.csrf, SECTION);
    let path = format!("/v1/tenancies/{}", percent(&name));
    let answer = call(&served.api, &signed.via, http::Method::GET, &path, None, "application/json").await;
    if let Err(refusal) = answer.json::<Value>() {
        return super::refused(chrome, &refusal);
    }
    let attempt = session::random_token().unwrap_or_default();
    render(StatusCode::OK, &page(chrome, &name, &BTreeMap::new(), &attempt))
}

#[derive(Deserialize)]
struct Made {
    name: String,
}

/// The API body, or the answers missing.
fn body(form: &BTreeMap<String, String>) -> Result<Value, Vec<(String, String)>> {
    let mut quota = serde_json::Map::new();
    for (id, key) in LIMITS {
        let given = form.get(id).map(|v| v.trim()).unwrap_or_default();
        if given.is_empty() {
            continue;
        }
        let value = match (key, given.parse::<u32>()) {
            ("loadBalancers", Ok(n)) => json!(n),
            _ => json!(given),
        };
        quota.insert(key.to_owned(), value);
    }
    let justification = form.get("justification").map(|j| j.trim().to_owned()).unwrap_or_default();
    let mut missing = Vec::new();
    if quota.is_empty() {
        missing.push(("cpu".to_owned(), "Enter at least one new limit".to_owned()));
    }
    if justification.chars().count() < 10 {
        missing.push((
            "justification".to_owned(),
            "Enter why your organisation needs it, in at least 10 characters".to_owned(),
        ));
    }
    if missing.is_empty() {
        Ok(json!({"quota": quota, "justification": justification}))
    } else {
        Err(missing)
    }
}

/// The form field an API error names.
fn field_of(api: &str) -> String {
    LIMITS
        .iter()
        .find(|(_, key)| api == format!("quota.{key}") || api.starts_with(&format!("quota.{key}.")))
        .map_or_else(
            || if api == "justification" { api.to_owned() } else { "cpu".to_owned() },
            |(id, _)| (*id).to_owned(),
        )
}

/// `POST /portal/tenancies/{name}/more-quota`.
pub async fn answer(
    State(served): State<Served>,
    signed: SignedIn,
    Path(name): Path<String>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !session::csrf_matches(&signed.session, form.get("csrf").map_or("", String::as_str)) {
        return super::forged_form();
    }
    let chrome = Chrome::signed_in(&signed.session.name, &signed.session.csrf, SECTION);
    let attempt = form.get("attempt").cloned().unwrap_or_default();
    let errors = match body(&form) {
        Err(missing) => missing,
        Ok(body) => {
            let path = format!("/v1/tenancies/{}/quota-requests", percent(&name));
            let key = format!("portal-{attempt}");
            let answer = call(
                &served.api,
                &signed.via,
                http::Method::POST,
                &path,
                Some((body, key)),
                "application/json",
            )
            .await;
            match answer.json::<Made>() {
                Ok(made) => return Redirect::to(&format!("/portal/requests/{}", made.name)).into_response(),
                Err(refusal) if refusal.status == 422 => {
                    let mut errors: Vec<(String, String)> =
                        refusal.errors.iter().map(|e| (field_of(&e.field), e.detail.clone())).collect();
                    if errors.is_empty() {
                        errors.push(("cpu".into(), refusal.detail.unwrap_or(refusal.title)));
                    }
                    errors
                }
                Err(refusal) => return super::refused(chrome, &refusal),
            }
        }
    };
    // A refused body is kept with its key by the API: a corrected one needs a new key.
    let fresh = session::random_token().unwrap_or_default();
    let mut page = page(chrome, &name, &form, &fresh);
    with_errors(&mut page.fields, &errors);
    render(StatusCode::UNPROCESSABLE_ENTITY, &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn only_the_limits_given_are_asked_for() {
        let body =
            body(&form(&[("cpu", " 8 "), ("load-balancers", "1"), ("justification", "the winter peak")]))
                .unwrap();
        assert_eq!(
            body,
            json!({"quota": {"cpu": "8", "loadBalancers": 1}, "justification": "the winter peak"})
        );
        let missing = body_err(&form(&[("justification", "short")]));
        assert_eq!(missing.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(), ["cpu", "justification"]);
    }

    fn body_err(f: &BTreeMap<String, String>) -> Vec<(String, String)> {
        body(f).unwrap_err()
    }

    #[test]
    fn api_errors_land_on_their_fields() {
        assert_eq!(field_of("quota.memory"), "memory");
        assert_eq!(field_of("quota.loadBalancers"), "load-balancers");
        assert_eq!(field_of("justification"), "justification");
        assert_eq!(field_of("quota"), "cpu");
    }
}
