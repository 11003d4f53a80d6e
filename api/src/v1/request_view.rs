//! How the API shows a TenancyRequest: a request for a new tenancy or for a quota change, its
//! decision and where what it asked for stands.

use commons_crds::TenancyRequest;
use commons_crds::tenancy_request::Outcome;
use kube::ResourceExt;
use serde::Serialize;
use serde_json::Value;

use super::{Estimate, PolicyView};

/// A request as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestView {
    /// The request's name.
    pub name: String,
    /// `Tenancy` (a new tenancy) or `QuotaChange` (new limits for an existing one).
    #[schema(value_type = String, example = "Tenancy")]
    pub kind: &'static str,
    /// The tenancy asked for, or whose quota is to change.
    pub tenancy_name: String,
    /// The organisation asking.
    pub organisation: String,
    /// Who asked.
    pub requester: Requester,
    /// Why.
    pub justification: String,
    /// A new tenancy: Pending, Denied, Approved (its Tenancy being made), Ready, NameTaken, or
    /// TenancyDeleted (the Tenancy it made was deleted since; it is not made again). A quota
    /// change: Pending, Denied, Approved (being applied), Applied, TenancyMissing,
    /// NotTheOrganisations or Refused (the Tenancy's validation refused the new quota).
    #[schema(value_type = String)]
    pub state: &'static str,
    /// A quota change: the limits asked for (the others stay as they are).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub quota: Option<Value>,
    /// The decision, once made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<DecisionView>,
    /// The Tenancy made (or whose quota was changed) by it, once done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenancy: Option<String>,
    /// When it was made (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// Next month's cost of the quota asked for (for a quota change: of the tenancy's whole quota
    /// once changed), VAT included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_monthly_cost: Option<Estimate>,
    /// For a pending request for a new tenancy (`GET` of one request): what the auto-approval
    /// policy says of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyView>,
}

/// Who asked.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Requester {
    /// Their name.
    pub name: String,
    /// Their email address.
    pub email: String,
}

/// A decision.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DecisionView {
    /// Approved or Denied.
    #[schema(value_type = String, example = "Approved")]
    pub outcome: Outcome,
    /// Who decided (`policy:<rule>` for the auto-approval policy).
    pub decided_by: String,
    /// When (RFC 3339).
    pub decided_at: String,
    /// Why.
    pub reason: String,
}

/// The list's answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RequestList {
    /// Oldest first.
    pub items: Vec<RequestView>,
}

/// Where what `r` asked for stands.
fn state(r: &TenancyRequest) -> &'static str {
    let status = r.status.clone().unwrap_or_default();
    let quota_change = r.spec.quota.is_some();
    let follow = if quota_change { "Applied" } else { "Provisioned" };
    let c = status.conditions.iter().find(|c| c.type_ == follow);
    match (status.decision.as_ref().map(|d| d.outcome), c) {
        (None, _) => "Pending",
        (Some(Outcome::Denied), _) => "Denied",
        (Some(Outcome::Approved), Some(c)) if c.status == "True" => {
            if quota_change {
                "Applied"
            } else {
                "Ready"
            }
        }
        (Some(Outcome::Approved), Some(c)) => match c.reason.as_str() {
            "TenancyDeleted" => "TenancyDeleted",
            "NameTaken" => "NameTaken",
            "TenancyMissing" => "TenancyMissing",
            "NotTheOrganisations" => "NotTheOrganisations",
            "Refused" => "Refused",
            _ => "Approved",
        },
        (Some(Outcome::Approved), None) => "Approved",
    }
}

/// How the API shows `r`.
pub fn view(r: &TenancyRequest, estimate: Option<Estimate>) -> RequestView {
    let status = r.status.clone().unwrap_or_default();
    RequestView {
        name: r.name_any(),
        kind: if r.spec.quota.is_some() { "QuotaChange" } else { "Tenancy" },
        tenancy_name: r.spec.tenancy_name.clone(),
        organisation: r.spec.requester.organisation.clone(),
        requester: Requester { name: r.spec.requester.name.clone(), email: r.spec.requester.email.clone() },
        justification: r.spec.justification.clone(),
        state: state(r),
        quota: r.spec.quota.as_ref().and_then(|q| serde_json::to_value(q).ok()),
        decision: status.decision.map(|d| DecisionView {
            outcome: d.outcome,
            decided_by: d.decided_by,
            decided_at: d.decided_at.0.to_string(),
            reason: d.reason,
        }),
        tenancy: status.tenancy,
        created_at: r.metadata.creation_timestamp.as_ref().map(|t| t.0.to_string()),
        estimated_monthly_cost: estimate,
        policy: None,
    }
}
