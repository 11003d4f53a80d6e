//! One admission decision: which requests count, what they ask for, and the answer.

use k8s_openapi::api::core::v1::Pod;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};
use kube::core::{DynamicObject, Status};
use serde::de::DeserializeOwned;

use super::ledger::{Kind, Refusal, Request};
use super::{Admission, Decision, usage};
use crate::tenancy::quota::Amounts;
use crate::tenancy::{desired, status};

impl Admission {
    /// Decides one admission request.
    pub async fn review(&self, req: &AdmissionRequest<DynamicObject>) -> AdmissionResponse {
        let allow = AdmissionResponse::from(req);
        if req.kind.group == commons_crds::GROUP && req.kind.kind == "Subscription" {
            let (label, response) = match self.check_subscription(req) {
                None => ("admitted", allow),
                Some(refusal) => ("refused", refuse(allow, 422, "Invalid", &refusal)),
            };
            self.metrics.decisions.with_label_values(&["Subscription", label]).inc();
            return response;
        }
        match self.check_policy(req).await {
            Ok(None) => {}
            Ok(Some(refusal)) => {
                self.metrics.decisions.with_label_values(&[req.kind.kind.as_str(), "refused"]).inc();
                return refuse(allow, 403, "Forbidden", &refusal);
            }
            Err(unavailable) => {
                self.metrics.decisions.with_label_values(&[req.kind.kind.as_str(), "unavailable"]).inc();
                return refuse(allow, 503, "ServiceUnavailable", &unavailable);
            }
        }
        let Some(kind) = kind_of(req) else {
            return allow;
        };
        let timer = self.metrics.duration.with_label_values(&[kind.as_str()]).start_timer();
        let outcome = self.decide(req, kind).await;
        timer.observe_duration();
        let (label, response) = match outcome {
            Ok(None) => ("admitted", allow),
            Ok(Some(refusal)) => ("refused", refuse(allow, 403, "Forbidden", &refusal)),
            Err(unavailable) => ("unavailable", refuse(allow, 503, "ServiceUnavailable", &unavailable)),
        };
        self.metrics.decisions.with_label_values(&[kind.as_str(), label]).inc();
        response
    }

    /// `Ok(None)` to admit, `Ok(Some(why))` to refuse, `Err(why)` when the check cannot be made
    /// now (refused too: admitting unchecked could break the limit).
    async fn decide(
        &self,
        req: &AdmissionRequest<DynamicObject>,
        kind: Kind,
    ) -> std::result::Result<Option<String>, String> {
        let namespace = req.namespace.clone().unwrap_or_default();
        let Some((tenancy_name, tenancy)) = self.tenancy_of_namespace(&namespace, "quota").await? else {
            return Ok(None);
        };
        let (stage, _) = status::expiry(jiff::Timestamp::now(), tenancy.spec.expires_at.as_ref());
        if kind == Kind::Pod && req.operation == Operation::Create {
            if stage == status::Expiry::Expired {
                return Ok(Some(format!(
                    "tenancy {tenancy_name:?} passed its expiry date (spec.expiresAt) and is suspended: no new pods start"
                )));
            }
            if tenancy.spec.suspended {
                return Ok(Some(format!(
                    "tenancy {tenancy_name:?} is suspended (spec.suspended): no new pods start"
                )));
            }
        }
        let limits = desired::quota_limits(&tenancy)
            .map_err(|e| format!("tenancy {tenancy_name:?} spec.quota: {e}"))?;
        let request =
            request_of(req, kind, &namespace).map_err(|e| format!("cannot read the object: {e}"))?;
        if !request.increase().keys().any(|r| limits.contains_key(r)) {
            return Ok(None);
        }
        if !self.stores.synced() {
            return Err("Commons is starting and has not counted the tenancy's usage yet; try again".into());
        }
        // A share raised moments ago is waited for, once, rather than refused (a refused client
        // retries, and meanwhile another namespace's demand could take the headroom back).
        let mut waited = false;
        loop {
            // One decision per tenancy at a time, and none while the planner lowers its shares.
            let tenancy_lock = self.demand.tenancy_lock(&tenancy_name);
            let turn = tenancy_lock.lock().await;
            match self.decide_now(&tenancy_name, &namespace, &request, &limits, req.dry_run, waited) {
                Decision::Done(Ok(())) => return Ok(None),
                Decision::Done(Err(refusal)) => {
                    if let (Refusal::Share { resource, requested, .. }, false) = (&refusal, req.dry_run) {
                        // The tenancy has headroom, this namespace's share has not: move it here
                        // (a dry run changes nothing, so it asks for nothing either).
                        self.demand.record(&tenancy_name, &namespace, resource, *requested);
                    }
                    return Ok(Some(message(&tenancy_name, &namespace, kind, &refusal)));
                }
                Decision::WaitUntil(settled) => {
                    drop(turn);
                    tokio::time::sleep_until(settled.into()).await;
                    waited = true;
                }
            }
        }
    }

    /// Decides `request` now (call with the tenancy lock held), or says until when to wait: when
    /// only a share raised moments ago refuses it and it has not `waited` already.
    fn decide_now(
        &self,
        tenancy: &str,
        namespace: &str,
        request: &Request,
        limits: &Amounts,
        dry_run: bool,
        waited: bool,
    ) -> Decision {
        let ledger = self.ledger(tenancy);
        let mut ledger = ledger.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let observed = self.observed(tenancy);
        let settled = ledger.settle_observed(&observed);
        self.count_settled(settled, "observed");
        let watched = self.share(namespace);
        // A share being lowered counts at once, before the watch shows it; a share raised moments
        // ago counts once the apiserver's own quota admission surely sees it too.
        let pins = self.demand.pinned(namespace);
        // (A share being written where the quota has none yet, or for a quota not made yet,
        // counts as pinned too: until the write lands nothing else limits it.)
        let share = match (&watched, pins.hard.is_empty()) {
            (None, true) => None,
            (watched, _) => {
                let mut share = watched.clone().unwrap_or_default();
                for (resource, pin) in &pins.hard {
                    let hard = share.hard.entry(resource.clone()).or_insert(*pin);
                    *hard = (*hard).min(*pin);
                }
                Some(share)
            }
        };
        let decision = ledger.decide(request, limits, share.as_ref(), &observed);
        if let (Err(Refusal::Share { .. }), Some(settles), false) = (&decision, pins.raise_settles, waited)
            && ledger.decide(request, limits, watched.as_ref(), &observed).is_ok()
        {
            return Decision::WaitUntil(settles);
        }
        if decision.is_ok() && !dry_run {
            // An object admitted again before the watches show it (created, then updated at
            // once) keeps one reservation: count it once.
            if ledger.reserve(request, self.now()) {
                self.metrics.reservations.inc();
            }
        }
        Decision::Done(decision)
    }
}

fn kind_of(req: &AdmissionRequest<DynamicObject>) -> Option<Kind> {
    if !req.kind.group.is_empty() {
        return None;
    }
    match (req.kind.kind.as_str(), &req.operation, req.sub_resource.as_deref()) {
        ("Pod", Operation::Create, None) | ("Pod", Operation::Update, Some("resize")) => Some(Kind::Pod),
        ("PersistentVolumeClaim", Operation::Create | Operation::Update, None) => {
            Some(Kind::PersistentVolumeClaim)
        }
        ("Service", Operation::Create | Operation::Update, None) => Some(Kind::Service),
        _ => None,
    }
}

pub(super) fn convert<K: DeserializeOwned>(obj: &DynamicObject) -> std::result::Result<K, serde_json::Error> {
    serde_json::from_value(serde_json::to_value(obj)?)
}

fn usage_of(kind: Kind, obj: &DynamicObject) -> std::result::Result<Amounts, serde_json::Error> {
    Ok(match kind {
        Kind::Pod => usage::pod(&convert::<Pod>(obj)?),
        Kind::PersistentVolumeClaim => usage::persistent_volume_claim(&convert(obj)?),
        Kind::Service => usage::service(&convert(obj)?),
    })
}

fn request_of(
    req: &AdmissionRequest<DynamicObject>,
    kind: Kind,
    namespace: &str,
) -> std::result::Result<Request, String> {
    let obj = req.object.as_ref().ok_or("the request has no object")?;
    let usage = usage_of(kind, obj).map_err(|e| e.to_string())?;
    let previous = match &req.old_object {
        Some(old) if req.operation == Operation::Update => usage_of(kind, old).map_err(|e| e.to_string())?,
        _ => Amounts::new(),
    };
    Ok(Request {
        uid: obj.metadata.uid.clone().unwrap_or_else(|| format!("{}/{}", namespace, req.name)),
        kind,
        namespace: namespace.to_owned(),
        name: obj.metadata.name.clone().unwrap_or_else(|| req.name.clone()),
        usage,
        previous,
    })
}

fn message(tenancy: &str, namespace: &str, kind: Kind, refusal: &Refusal) -> String {
    format!("{} in namespace {namespace:?} of tenancy {tenancy:?} {refusal}", kind.as_str())
}

fn refuse(response: AdmissionResponse, code: u16, reason: &str, message: &str) -> AdmissionResponse {
    let mut response = response.deny(message);
    response.result = Status::failure(message, reason).with_code(code);
    response
}
