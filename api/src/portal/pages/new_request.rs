//! Requesting a tenancy: the GOV.UK question-page pattern. Four question pages (who it is for,
//! what it needs, how it is classified and whether it is a sandbox, why it is needed), each
//! checked on submit by the API's own validation (a dry run of `POST /v1/tenancy-requests` with
//! the questions not yet reached stood in for); a check-answers page with the estimated monthly
//! cost from the same dry run; then the request, and a confirmation panel.

use std::collections::BTreeMap;

use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::form::{QuestionPage, with_errors};
use super::questions::Step;
use crate::portal::Served;
use crate::portal::call::{Refusal, call};
use crate::portal::chrome::{Chrome, render};
use crate::portal::draft::{Draft, form_field};
use crate::portal::session;
use crate::portal::signed::SignedIn;

const SECTION: &str = "/portal/tenancies";
const BASE: &str = "/portal/request-tenancy";

#[derive(Deserialize)]
struct Who {
    user: String,
    #[serde(default)]
    organisations: Vec<String>,
}

async fn who(served: &Served, signed: &SignedIn) -> Result<Who, Refusal> {
    call(&served.api, &signed.via, http::Method::GET, "/v1/whoami", None, "application/json").await.json()
}

/// `?from=check`: a change made from the check-answers page returns there.
#[derive(Debug, Deserialize)]
pub struct From {
    from: Option<String>,
}

/// `GET /portal/request-tenancy`.
pub async fn begin() -> Redirect {
    Redirect::to(&format!("{BASE}/{}", Step::Organisation.slug()))
}

/// `GET /portal/request-tenancy/{step}`.
pub async fn ask(
    State(served): State<Served>,
    signed: SignedIn,
    Path(slug): Path<String>,
    Query(from): Query<From>,
) -> Response {
    let chrome = Chrome::signed_in(&signed.session.name, &signed.session.csrf, SECTION);
    let Some(step) = Step::of(&slug) else { return super::not_found().await };
    let who = match who(&served, &signed).await {
        Ok(w) => w,
        Err(refusal) => return super::refused(chrome, &refusal),
    };
    let mut draft = signed.session.draft.clone().unwrap_or_default();
    if draft.organisation.is_empty() && who.organisations.len() == 1 {
        draft.organisation = who.organisations[0].clone();
    }
    let page = question(chrome, step, &draft, &who.organisations, from.from.as_deref());
    render(StatusCode::OK, &page)
}

fn question(
    chrome: Chrome,
    step: Step,
    draft: &Draft,
    organisations: &[String],
    from: Option<&str>,
) -> QuestionPage {
    let suffix = if from == Some("check") { "?from=check" } else { "" };
    QuestionPage {
        chrome,
        caption: "Request a tenancy".into(),
        heading: step.heading().into(),
        action: format!("{BASE}/{}{suffix}", step.slug()),
        back: if suffix.is_empty() { step.back() } else { format!("{BASE}/check") },
        fields: step.fields(draft, organisations),
        hidden: Vec::new(),
    }
}

/// `POST /portal/request-tenancy/{step}`.
pub async fn answer(
    State(served): State<Served>,
    mut signed: SignedIn,
    Path(slug): Path<String>,
    Query(from): Query<From>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !session::csrf_matches(&signed.session, form.get("csrf").map_or("", String::as_str)) {
        return super::forged_form();
    }
    let chrome = Chrome::signed_in(&signed.session.name, &signed.session.csrf, SECTION);
    let Some(step) = Step::of(&slug) else { return super::not_found().await };
    let who = match who(&served, &signed).await {
        Ok(w) => w,
        Err(refusal) => return super::refused(chrome, &refusal),
    };
    let mut draft = signed.session.draft.clone().unwrap_or_default();
    step.apply(&mut draft, &form);
    // A changed request is a new submission; the answers are kept before the API is asked.
    draft.attempt.clear();
    signed.session.draft = Some(draft.clone());
    if let Err(response) = signed.save(&served).await {
        return response;
    }
    let mut errors = step.missing(&draft);
    if errors.is_empty() {
        // The API's own validation, of this page's answers.
        let body = draft.body(&who.user, jiff::Timestamp::now(), false);
        match dry_run(&served, &signed, body).await {
            Ok(_) => {}
            Err(refusal) if refusal.status == 422 => {
                let own: Vec<&str> = step.fields(&draft, &[]).iter().map(|f| f.id).collect();
                errors = refusal
                    .errors
                    .iter()
                    .filter_map(|e| form_field(&e.field).map(|id| (id.to_owned(), sentence(&e.detail))))
                    .filter(|(id, _)| own.contains(&id.as_str()))
                    .collect();
            }
            Err(refusal) => return super::refused(chrome, &refusal),
        }
    }
    if !errors.is_empty() {
        let mut page = question(chrome, step, &draft, &who.organisations, from.from.as_deref());
        with_errors(&mut page.fields, &errors);
        return render(StatusCode::UNPROCESSABLE_ENTITY, &page);
    }
    let next = if from.from.as_deref() == Some("check") { format!("{BASE}/check") } else { step.next() };
    Redirect::to(&next).into_response()
}

/// The API's message as a sentence a person reads.
fn sentence(detail: &str) -> String {
    let mut chars = detail.trim().chars();
    chars.next().map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

async fn dry_run(
    served: &Served,
    signed: &SignedIn,
    body: serde_json::Value,
) -> Result<serde_json::Value, Refusal> {
    let key = session::random_token().unwrap_or_default();
    call(
        &served.api,
        &signed.via,
        http::Method::POST,
        "/v1/tenancy-requests?dryRun=All",
        Some((body, format!("portal-check-{key}"))),
        "application/json",
    )
    .await
    .json()
}
