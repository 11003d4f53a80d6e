//! The end of requesting a tenancy: the check-answers page (every answer with a link to change
//! it, and the estimated monthly cost from a dry run of the API), the request itself (once, even
//! if submitted twice: its idempotency key is kept with the draft), and the confirmation panel.

use askama::Template;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::estimate::Estimate;
use crate::portal::Served;
use crate::portal::call::{Refusal, call};
use crate::portal::chrome::{Chrome, render};
use crate::portal::draft::{Draft, form_field};
use crate::portal::session;
use crate::portal::signed::SignedIn;

const SECTION: &str = "/portal/tenancies";
const BASE: &str = "/portal/request-tenancy";

/// One answer on the check-answers page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The question.
    pub key: &'static str,
    /// The answer.
    pub value: String,
    /// Where to change it.
    pub change: String,
}

/// The answers, in the order asked.
pub fn rows(d: &Draft) -> Vec<Row> {
    let at = |step: &str, id: &str| format!("{BASE}/{step}?from=check#{id}");
    let sandbox =
        if d.is_sandbox() { format!("Yes, for {} days", d.sandbox_days.trim()) } else { "No".into() };
    vec![
        Row {
            key: "Organisation",
            value: format!("{} ({})", d.display_name.trim(), d.organisation),
            change: at("organisation", "organisation"),
        },
        Row { key: "Sector", value: d.sector.replace('-', " "), change: at("organisation", "sector") },
        Row {
            key: "Cost centre",
            value: d.cost_centre.trim().into(),
            change: at("organisation", "cost-centre"),
        },
        Row {
            key: "Contact email address",
            value: d.contact_email.trim().into(),
            change: at("organisation", "contact-email"),
        },
        Row { key: "Tenancy name", value: d.name.trim().into(), change: at("organisation", "name") },
        Row { key: "Namespaces", value: d.namespace_names().join(", "), change: at("needs", "namespaces") },
        Row {
            key: "Quota",
            value: format!(
                "CPU {}, memory {}, storage {}, load balancers {}",
                d.cpu.trim(),
                d.memory.trim(),
                d.storage.trim(),
                d.load_balancers.trim()
            ),
            change: at("needs", "cpu"),
        },
        Row {
            key: "Classification",
            value: d.classification.to_uppercase(),
            change: at("classification", "classification"),
        },
        Row { key: "Sandbox", value: sandbox, change: at("classification", "sandbox") },
        Row {
            key: "Why it is needed",
            value: d.justification.trim().into(),
            change: at("reason", "justification"),
        },
    ]
}

/// Which question page asks for a form field.
fn page_of(id: &str) -> &'static str {
    match id {
        "namespaces" | "cpu" | "memory" | "storage" | "load-balancers" => "needs",
        "classification" | "sandbox" | "sandbox-days" => "classification",
        "justification" => "reason",
        _ => "organisation",
    }
}

/// The API's refusals as links to the page and field that answer each.
fn linked(refusal: &Refusal) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = refusal
        .errors
        .iter()
        .map(|e| {
            let id = form_field(&e.field).unwrap_or("name");
            (format!("{BASE}/{}?from=check#{id}", page_of(id)), e.detail.clone())
        })
        .collect();
    if out.is_empty() {
        out.push((
            format!("{BASE}/organisation?from=check"),
            refusal.detail.clone().unwrap_or(refusal.title.clone()),
        ));
    }
    out
}

#[derive(Deserialize)]
struct Estimated {
    #[serde(default, rename = "estimatedMonthlyCost")]
    estimate: Option<Estimate>,
}

impl CheckPage {
    /// The error summary.
    fn summary(&self) -> Vec<(String, String)> {
        self.errors.clone()
    }
}

#[derive(Template)]
#[template(path = "portal/check.html")]
struct CheckPage {
    chrome: Chrome,
    rows: Vec<Row>,
    /// The estimated monthly cost, where it could be priced.
    estimate: Option<Estimate>,
    /// `(href, message)`.
    errors: Vec<(String, String)>,
}

#[derive(Deserialize)]
struct Who {
    user: String,
}

async fn draft_and_owner(served: &Served, signed: &SignedIn) -> Result<(Draft, String), Response> {
    let chrome = Chrome::signed_in(&signed.session.name, &signed.session.csrf, SECTION);
    let Some(draft) = signed.session.draft.clone() else {
        return Err(Redirect::to(BASE).into_response());
    };
    let who: Who = call(&served.api, &signed.via, http::Method::GET, "/v1/whoami", None, "application/json")
        .await
        .json()
        .map_err(|r| super::refused(chrome, &r))?;
    Ok((draft, who.user))
}

fn page(
    chrome: Chrome,
    draft: &Draft,
    estimate: Option<Estimate>,
    errors: Vec<(String, String)>,
) -> CheckPage {
    CheckPage { chrome, rows: rows(draft), estimate, errors }
}

/// `GET /portal/request-tenancy/check`.
pub async fn show(State(served): State<Served>, signed: SignedIn) -> Response {
    let chrome = Chrome::signed_in(&signed.session.name, &signed.session.csrf, SECTION);
    let (draft, owner) = match draft_and_owner(&served, &signed).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let body = draft.body(&owner, jiff::Timestamp::now(), true);
    let key = format!("portal-check-{}", session::random_token().unwrap_or_default());
    let answer = call(
        &served.api,
        &signed.via,
        http::Method::POST,
        "/v1/tenancy-requests?dryRun=All",
        Some((body, key)),
        "application/json",
    )
    .await;
    match answer.json::<Estimated>() {
        Ok(priced) => render(StatusCode::OK, &page(chrome, &draft, priced.estimate, Vec::new())),
        Err(refusal) if refusal.status == 422 => {
            render(StatusCode::UNPROCESSABLE_ENTITY, &page(chrome, &draft, None, linked(&refusal)))
        }
        Err(refusal) => super::refused(chrome, &refusal),
    }
}

/// The submission form.
#[derive(Debug, Deserialize)]
pub struct Submit {
    #[serde(default)]
    csrf: String,
}

#[derive(Deserialize)]
struct Made {
    name: String,
}

/// `POST /portal/request-tenancy/check`: the request.
pub async fn submit(
    State(served): State<Served>,
    mut signed: SignedIn,
    Form(form): Form<Submit>,
) -> Response {
    if !session::csrf_matches(&signed.session, &form.csrf) {
        return super::forged_form();
    }
    let chrome = Chrome::signed_in(&signed.session.name, &signed.session.csrf, SECTION);
    let (mut draft, owner) = match draft_and_owner(&served, &signed).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    if draft.attempt.is_empty() {
        draft.attempt = session::random_token().unwrap_or_default();
        draft.attempt_at_ms = jiff::Timestamp::now().as_millisecond();
        signed.session.draft = Some(draft.clone());
        if let Err(response) = signed.save(&served).await {
            return response;
        }
    }
    // The same body on every retry of this submission (a sandbox's expiry counts from its first).
    let at =
        jiff::Timestamp::from_millisecond(draft.attempt_at_ms).unwrap_or_else(|_| jiff::Timestamp::now());
    let body = draft.body(&owner, at, true);
    let key = format!("portal-{}", draft.attempt);
    let answer = call(
        &served.api,
        &signed.via,
        http::Method::POST,
        "/v1/tenancy-requests",
        Some((body, key)),
        "application/json",
    )
    .await;
    match answer.json::<Made>() {
        Ok(made) => {
            signed.session.draft = None;
            if let Err(response) = signed.save(&served).await {
                return response;
            }
            Redirect::to(&format!("{BASE}/sent/{}", made.name)).into_response()
        }
        Err(refusal) => {
            // Refused: its answer is kept with its key by the API, so a corrected request
            // needs a new one.
            if refusal.status < 500 {
                draft.attempt.clear();
                signed.session.draft = Some(draft.clone());
                if let Err(response) = signed.save(&served).await {
                    return response;
                }
            }
            if refusal.status == 422 {
                render(StatusCode::UNPROCESSABLE_ENTITY, &page(chrome, &draft, None, linked(&refusal)))
            } else {
                super::refused(chrome, &refusal)
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Sent {
    name: String,
    state: String,
    tenancy_name: String,
    #[serde(default)]
    decision: Option<Decision>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Decision {
    decided_by: String,
}

#[derive(Template)]
#[template(path = "portal/sent.html")]
struct SentPage {
    chrome: Chrome,
    name: String,
    tenancy: String,
    approved: bool,
    by_policy: bool,
}

/// `GET /portal/request-tenancy/sent/{name}`: the confirmation.
pub async fn sent(State(served): State<Served>, signed: SignedIn, Path(name): Path<String>) -> Response {
    let chrome = Chrome::signed_in(&signed.session.name, &signed.session.csrf, SECTION);
    let path = format!("/v1/tenancy-requests/{}", crate::auth::http::percent(&name));
    match call(&served.api, &signed.via, http::Method::GET, &path, None, "application/json")
        .await
        .json::<Sent>()
    {
        Ok(r) => {
            let approved = matches!(r.state.as_str(), "Approved" | "Ready");
            let by_policy = r.decision.as_ref().is_some_and(|d| d.decided_by.starts_with("policy:"));
            render(
                StatusCode::OK,
                &SentPage { chrome, name: r.name, tenancy: r.tenancy_name, approved, by_policy },
            )
        }
        Err(refusal) => super::refused(chrome, &refusal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::portal::call::FieldRefusal;

    #[test]
    fn each_refusal_links_to_the_question_that_answers_it() {
        let refusal = Refusal {
            status: 422,
            title: "The request is not valid".into(),
            detail: None,
            errors: vec![
                FieldRefusal { field: "tenancy.quota.cpu".into(), detail: "must be a quantity".into() },
                FieldRefusal { field: "justification".into(), detail: "too short".into() },
            ],
        };
        assert_eq!(
            linked(&refusal),
            [
                ("/portal/request-tenancy/needs?from=check#cpu".to_owned(), "must be a quantity".to_owned()),
                (
                    "/portal/request-tenancy/reason?from=check#justification".to_owned(),
                    "too short".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn every_answer_is_shown_with_where_to_change_it() {
        let d = Draft { sandbox: "yes".into(), sandbox_days: "30".into(), ..Draft::default() };
        let rows = rows(&d);
        assert_eq!(rows.len(), 10);
        assert!(rows.iter().any(|r| r.key == "Sandbox" && r.value == "Yes, for 30 days"));
        assert!(
            rows.iter()
                .all(|r| r.change.starts_with("/portal/request-tenancy/") && r.change.contains("from=check"))
        );
    }
}
