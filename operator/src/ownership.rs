//! Field ownership of the objects Commons makes with a plain create.
//!
//! Commons makes a new object with a plain create, the cheapest write the apiserver has (a
//! server-side apply that creates costs it about 1.7 times as much: see docs/tenancy.md,
//! "Figures"), and changes it afterwards with server-side apply. The apiserver records a create's
//! fields as owned by an `Update` entry of Commons' field manager, and a field owned by an `Update`
//! entry is never removed by an apply that leaves it out. So before the first apply to such an
//! object Commons turns that entry into its `Apply` entry (one write, once in the object's life, a
//! merge patch of `metadata.managedFields` guarded by the resourceVersion it read), and from then
//! on a field Commons stops setting is removed, as if the object had been applied from the start.
//!
//! The watches drop `managedFields` (often the largest part of an object); [`mark`] leaves an
//! empty list instead on an object that still has such an entry, a marker that costs no memory.

use std::fmt::Debug;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry, ObjectMeta};
use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::apply::{FIELD_MANAGER, count_write};
use crate::error::{Error, Result};

/// Whether `entry` is Commons' own `Update` entry of the object itself (not of a subresource such
/// as `status`, whose fields an apply to the object never touches).
fn created_by_commons(entry: &ManagedFieldsEntry) -> bool {
    entry.manager.as_deref() == Some(FIELD_MANAGER)
        && entry.operation.as_deref() == Some("Update")
        && entry.subresource.as_deref().unwrap_or_default().is_empty()
}

/// Whether `meta` shows fields Commons holds through a create rather than an apply: the marker
/// [`mark`] leaves, or such an entry in the full `managedFields` the apiserver gives.
pub fn held_by_create(meta: &ObjectMeta) -> bool {
    meta.managed_fields.as_ref().is_some_and(|m| m.is_empty() || m.iter().any(created_by_commons))
}

/// For the stores: replaces `managedFields` by an empty list when the object still has fields
/// Commons holds through a create, and by nothing otherwise.
pub fn mark(meta: &mut ObjectMeta) {
    let held = held_by_create(meta);
    meta.managed_fields = held.then(Vec::new);
}

/// `entries` with every `Update` entry of Commons' own merged into its `Apply` entry (made when
/// there is none), or `None` when there is no such entry.
pub fn as_applied(entries: &[ManagedFieldsEntry]) -> Option<Vec<ManagedFieldsEntry>> {
    let (created, mut rest): (Vec<_>, Vec<_>) = entries.iter().cloned().partition(created_by_commons);
    if created.is_empty() {
        return None;
    }
    let applied = rest.iter().position(|e| {
        e.manager.as_deref() == Some(FIELD_MANAGER)
            && e.operation.as_deref() == Some("Apply")
            && e.subresource.as_deref().unwrap_or_default().is_empty()
    });
    let mut merged = match applied {
        Some(i) => rest.remove(i),
        None => ManagedFieldsEntry {
            operation: Some("Apply".into()),
            subresource: None,
            fields_v1: None,
            ..created[0].clone()
        },
    };
    let mut fields =
        merged.fields_v1.take().map(|f| f.0).unwrap_or_else(|| Value::Object(Default::default()));
    for entry in &created {
        if let Some(f) = &entry.fields_v1 {
            union(&mut fields, &f.0);
        }
    }
    merged.fields_type = Some("FieldsV1".into());
    merged.fields_v1 = Some(FieldsV1(fields));
    rest.push(merged);
    Some(rest)
}

/// Adds the fields of `more` to `into` (a `FieldsV1` set is a tree of objects).
fn union(into: &mut Value, more: &Value) {
    match (into, more) {
        (Value::Object(into), Value::Object(more)) => {
            for (key, value) in more {
                match into.get_mut(key) {
                    Some(existing) => union(existing, value),
                    None => {
                        into.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (into, more) => *into = more.clone(),
    }
}

/// Makes the fields Commons holds on the object `name` through a create its applied fields (see
/// the module's documentation). `read` is the object's metadata when the caller has read it in
/// full; otherwise it is read here. Nothing is written when there is nothing to hand over, or when
/// the object is gone (the apply that follows makes it again). The write is guarded by the
/// resourceVersion read; when the object changed in between (a quota's usage moves with every pod)
/// it is read again and tried again, up to three times.
pub async fn make_applied<K>(api: &Api<K>, name: &str, read: Option<&ObjectMeta>) -> Result<()>
where
    K: Resource + DeserializeOwned + Clone + Debug,
    K::DynamicType: Default,
{
    let kind = K::kind(&K::DynamicType::default()).into_owned();
    let failed = |what: &str, source| Error::Kube {
        context: format!("{what} the fields of {kind} {name} Commons created"),
        source,
    };
    let mut known = read.filter(|m| m.managed_fields.as_ref().is_some_and(|f| !f.is_empty())).cloned();
    for attempt in 1..=3 {
        let meta = match known.take() {
            Some(meta) => meta,
            None => match api.get_metadata(name).await {
                Ok(found) => found.metadata,
                Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
                Err(source) => return Err(failed("reading", source)),
            },
        };
        let Some(entries) = meta.managed_fields.as_deref().and_then(as_applied) else {
            return Ok(());
        };
        let patch = serde_json::json!({
            "metadata": {"resourceVersion": meta.resource_version, "managedFields": entries}
        });
        count_write(&kind, "own");
        match api.patch_metadata(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 && attempt < 3 => continue,
            Err(source) => return Err(failed("applying", source)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(manager: &str, operation: &str, subresource: Option<&str>, fields: Value) -> ManagedFieldsEntry {
        ManagedFieldsEntry {
            api_version: Some("v1".into()),
            fields_type: Some("FieldsV1".into()),
            fields_v1: Some(FieldsV1(fields)),
            manager: Some(manager.into()),
            operation: Some(operation.into()),
            subresource: subresource.map(Into::into),
            time: None,
        }
    }

    fn meta(entries: Option<Vec<ManagedFieldsEntry>>) -> ObjectMeta {
        ObjectMeta { managed_fields: entries, ..Default::default() }
    }

    #[test]
    fn what_commons_created_becomes_what_it_applied() {
        let spec = json!({"f:spec": {"f:hard": {"f:pods": {}}}});
        let labels = json!({"f:metadata": {"f:labels": {"f:a": {}}}});
        let status = json!({"f:status": {"f:used": {}}});
        type Entries = Vec<ManagedFieldsEntry>;
        let cases: Vec<(&str, Entries, Option<Entries>)> = vec![
            (
                "a create alone becomes the apply entry",
                vec![entry(FIELD_MANAGER, "Update", None, spec.clone())],
                Some(vec![entry(FIELD_MANAGER, "Apply", None, spec.clone())]),
            ),
            (
                "a create and an apply are merged into the apply",
                vec![
                    entry(FIELD_MANAGER, "Update", None, spec.clone()),
                    entry(FIELD_MANAGER, "Apply", None, labels.clone()),
                ],
                Some(vec![entry(
                    FIELD_MANAGER,
                    "Apply",
                    None,
                    json!({"f:spec": {"f:hard": {"f:pods": {}}}, "f:metadata": {"f:labels": {"f:a": {}}}}),
                )]),
            ),
            (
                "other managers and Commons' status writes are left as they are",
                vec![
                    entry("kube-controller-manager", "Update", Some("status"), status.clone()),
                    entry(FIELD_MANAGER, "Update", Some("status"), status.clone()),
                    entry(FIELD_MANAGER, "Update", None, spec.clone()),
                    entry("someone", "Apply", None, labels.clone()),
                ],
                Some(vec![
                    entry("kube-controller-manager", "Update", Some("status"), status.clone()),
                    entry(FIELD_MANAGER, "Update", Some("status"), status.clone()),
                    entry("someone", "Apply", None, labels.clone()),
                    entry(FIELD_MANAGER, "Apply", None, spec.clone()),
                ]),
            ),
            ("nothing created: nothing to do", vec![entry(FIELD_MANAGER, "Apply", None, spec.clone())], None),
            (
                "someone else's create is not Commons'",
                vec![entry("someone", "Update", None, spec.clone())],
                None,
            ),
            (
                "an apply of the status is not the object's",
                vec![
                    entry(FIELD_MANAGER, "Apply", Some("status"), status.clone()),
                    entry(FIELD_MANAGER, "Update", None, spec.clone()),
                ],
                Some(vec![
                    entry(FIELD_MANAGER, "Apply", Some("status"), status.clone()),
                    entry(FIELD_MANAGER, "Apply", None, spec.clone()),
                ]),
            ),
        ];
        for (case, entries, want) in cases {
            assert_eq!(as_applied(&entries), want, "{case}");
        }
    }

    #[test]
    fn the_marker_says_whether_a_create_still_holds_fields() {
        let created = vec![entry(FIELD_MANAGER, "Update", None, json!({}))];
        let applied = vec![entry(FIELD_MANAGER, "Apply", None, json!({}))];
        let cases = [
            ("created", Some(created), true),
            ("applied", Some(applied), false),
            ("already marked", Some(vec![]), true),
            ("never had any", None, false),
        ];
        for (case, entries, held) in cases {
            let mut m = meta(entries);
            assert_eq!(held_by_create(&m), held, "{case}: before marking");
            mark(&mut m);
            assert_eq!(held_by_create(&m), held, "{case}: after marking");
            assert_eq!(m.managed_fields, held.then(Vec::new), "{case}: only the marker is kept");
        }
    }
}
