//! Requests for tenancies and quota: a council sees its own and their decisions; a platform team
//! sees every pending one with its forecast cost and decides it with a reason
//! (`GET /v1/tenancy-requests`, `/{name}`, `POST /{name}/approve|deny`).

use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::estimate::Estimate;
use super::format;
use crate::portal::Served;
use crate::portal::call::{FieldRefusal, call};
use crate::portal::chrome::{Chrome, render};
use crate::portal::session;
use crate::portal::signed::SignedIn;

/// A request as the API answers it (the fields the pages show).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    name: String,
    kind: String,
    tenancy_name: String,
    organisation: String,
    requester: Requester,
    #[serde(default)]
    justification: String,
    state: String,
    #[serde(default)]
    decision: Option<Decision>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    estimated_monthly_cost: Option<Estimate>,
    #[serde(default)]
    policy: Option<PolicyView>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PolicyView {
    #[serde(default)]
    approved_by: Option<String>,
    #[serde(default)]
    reasons: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct Requester {
    name: String,
    email: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Decision {
    outcome: String,
    decided_by: String,
    decided_at: String,
    reason: String,
}

#[derive(Deserialize)]
struct List {
    items: Vec<Request>,
}

impl Request {
    /// The tag's class.
    pub fn tag(&self) -> &'static str {
        format::tag_class(&self.state)
    }
    /// The state as people read it.
    pub fn state_text(&self) -> &'static str {
        format::state_text(&self.state)
    }
    /// What is asked for.
    pub fn kind_text(&self) -> &'static str {
        if self.kind == "QuotaChange" { "More quota" } else { "New tenancy" }
    }
    /// When it was made.
    pub fn created(&self) -> String {
        self.created_at.as_deref().map(format::date).unwrap_or_default()
    }
    /// Whether it waits for a decision.
    pub fn pending(&self) -> bool {
        self.state == "Pending"
    }
    /// The estimate, where the metering code could price the quota.
    pub fn estimate(&self) -> Option<&Estimate> {
        self.estimated_monthly_cost.as_ref()
    }
    /// What the auto-approval policy says of it, while it waits: `(approved by, reasons)`.
    pub fn policy_says(&self) -> Option<(Option<String>, Vec<String>)> {
        self.policy.as_ref().filter(|_| self.pending()).map(|p| (p.approved_by.clone(), p.reasons.clone()))
    }
    /// Who decided, when and why.
    pub fn decided(&self) -> Option<(String, String, String, String)> {
        self.decision
            .as_ref()
            .map(|d| (d.outcome.clone(), d.decided_by.clone(), format::date(&d.decided_at), d.reason.clone()))
    }
}

#[derive(Template)]
#[template(path = "portal/requests.html")]
struct ListPage {
    chrome: Chrome,
    pending: Vec<Request>,
    decided: Vec<Request>,
}

/// The decision form as filled in.
#[derive(Debug, Default, Deserialize)]
pub struct DecisionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    reason: String,
    /// Set when the page is drawn: submitting twice decides once.
    #[serde(default)]
    attempt: String,
}

#[derive(Template)]
#[template(path = "portal/request.html")]
struct ShowPage {
    chrome: Chrome,
    r: Request,
    form: DecisionForm,
    errors: Vec<FieldRefusal>,
    /// Just decided here: the success banner.
    decided: bool,
}

/// `?decided=1` after a decision.
#[derive(Debug, Default, Deserialize)]
pub struct Shown {
    #[serde(default)]
    decided: Option<String>,
}

impl ShowPage {
    /// The error summary: a link to each refused field.
    fn summary(&self) -> Vec<(String, String)> {
        self.errors.iter().map(|e| (format!("#{}", e.field), e.detail.clone())).collect()
    }

    /// The error of field `name`, if any.
    fn error(&self, name: &str) -> Option<&str> {
        self.errors.iter().find(|e| e.field == name).map(|e| e.detail.as_str())
    }
}

const SECTION: &str = "/portal/requests";

/// `GET /portal/requests`.
pub async fn list(State(served): State<Served>, signed: SignedIn) -> Response {
    let chrome = Chrome::signed_in(&signed.session.name, &signed.session.csrf, SECTION);
    let answer =
        call(&served.api, &signed.via, http::Method::GET, "/v1/tenancy-requests", None, "application/json")
            .await;
    match answer.json::<List>() {
        Ok(list) => {
            let (pending, mut decided): (Vec<_>, Vec<_>) = list.items.into_iter().partition(Request::pending);
            decided.reverse();
            render(StatusCode::OK, &ListPage { chrome, pending, decided })
        }
        Err(refusal) => super::refused(chrome, &refusal),
    }
}

async fn fetch(
    served: &Served,
    signed: &SignedIn,
    name: &str,
) -> Result<Request, crate::portal::call::Refusal> {
    let path = format!("/v1/tenancy-requests/{}", crate::auth::http::percent(name));
    call(&served.api, &signed.via, http::Method::GET, &path, None, "application/json").await.json::<Request>()
}

/// `GET /portal/requests/{name}`.
pub async fn show(
    State(served): State<Served>,
    signed: SignedIn,
    Path(name): Path<String>,
    Query(shown): Query<Shown>,
) -> Response {
    let chrome = Chrome::signed_in(&signed.session.name, &signed.session.csrf, SECTION);
    match fetch(&served, &signed, &name).await {
        Ok(r) => {
            let form = DecisionForm {
                attempt: session::random_token().unwrap_or_default(),
                ..DecisionForm::default()
            };
            let decided = shown.decided.is_some() && !r.pending();
            render(StatusCode::OK, &ShowPage { chrome, r, form, errors: Vec::new(), decided })
        }
        Err(refusal) => super::refused(chrome, &refusal),
    }
}

/// `POST /portal/requests/{name}/decision`: approve or deny with a reason.
pub async fn decide(
    State(served): State<Served>,
    signed: SignedIn,
    Path(name): Path<String>,
    Form(form): Form<DecisionForm>,
) -> Response {
    if !session::csrf_matches(&signed.session, &form.csrf) {
        return super::forged_form();
    }
    let chrome = Chrome::signed_in(&signed.session.name, &signed.session.csrf, SECTION);
    let mut errors = Vec::new();
    let verb = match form.outcome.as_str() {
        "approve" | "deny" => form.outcome.clone(),
        _ => {
            errors.push(FieldRefusal { field: "outcome".into(), detail: "Select approve or deny".into() });
            String::new()
        }
    };
    if form.reason.trim().is_empty() {
        errors.push(FieldRefusal {
            field: "reason".into(),
            detail: "Enter the reason for your decision".into(),
        });
    }
    if errors.is_empty() {
        let path = format!("/v1/tenancy-requests/{}/{verb}", crate::auth::http::percent(&name));
        let body = serde_json::json!({"reason": form.reason});
        let key = format!("portal-{}", form.attempt);
        let answer =
            call(&served.api, &signed.via, http::Method::POST, &path, Some((body, key)), "application/json")
                .await;
        match answer.json::<serde_json::Value>() {
            Ok(_) => {
                return Redirect::to(&format!(
                    "/portal/requests/{}?decided=1",
                    crate::auth::http::percent(&name)
                ))
                .into_response();
            }
            // The API's own validation, shown against the form's field.
            Err(refusal) if refusal.status == 422 => {
                errors = refusal
                    .errors
                    .into_iter()
                    .map(|e| FieldRefusal {
                        field: if e.field == "reason" { e.field } else { "reason".into() },
                        detail: e.detail,
                    })
                    .collect();
                if errors.is_empty() {
                    errors.push(FieldRefusal {
                        field: "reason".into(),
                        detail: refusal.detail.unwrap_or(refusal.title),
                    });
                }
            }
            Err(refusal) => return super::refused(chrome, &refusal),
        }
    }
    // A refused body is kept with its key by the API: a corrected one needs a new key.
    let form = DecisionForm { attempt: session::random_token().unwrap_or_default(), ..form };
    match fetch(&served, &signed, &name).await {
        Ok(r) => {
            render(StatusCode::UNPROCESSABLE_ENTITY, &ShowPage { chrome, r, form, errors, decided: false })
        }
        Err(refusal) => super::refused(chrome, &refusal),
    }
}
