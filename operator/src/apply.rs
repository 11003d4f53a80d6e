//! Writing child objects under one field manager, only when something differs (see
//! [`crate::compare`]): created when new, server-side applied when changed.

use std::fmt::Debug;

use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::compare::{Compare, why_write};
use crate::error::{Error, Result};

/// The field manager of everything Commons writes.
pub const FIELD_MANAGER: &str = commons_crds::labels::MANAGER;

/// Every write Commons sends to the apiserver, by kind and verb (registered by `Metrics::new`).
#[allow(clippy::expect_used)] // Static, valid options: construction cannot fail.
pub static WRITES: std::sync::LazyLock<prometheus::IntCounterVec> = std::sync::LazyLock::new(|| {
    prometheus::IntCounterVec::new(
        prometheus::Opts::new("apiserver_writes_total", "Write requests Commons sent to the apiserver."),
        &["kind", "verb"],
    )
    .expect("static metric options are valid")
});

/// Counts one write of `kind`.
pub fn count_write(kind: &str, verb: &str) {
    WRITES.with_label_values(&[kind, verb]).inc();
}

/// A JSON merge patch `{"status": new}` that also clears every status field, at any depth of
/// nested objects, that `observed` has and `new` leaves out. Status types skip empty lists and absent values when serialised, and a
/// merge patch leaves out-of-patch fields untouched, so without the explicit `null` a list that
/// became empty (the last member of a segment left) would never be cleared and the status would be
/// rewritten on every reconcile.
pub fn status_patch<S: Serialize>(observed: Option<&S>, new: &S) -> Value {
    let mut patch = serde_json::to_value(new).unwrap_or(Value::Null);
    if let Some(before) = observed.and_then(|o| serde_json::to_value(o).ok()) {
        clear_missing(&before, &mut patch);
    }
    serde_json::json!({ "status": patch })
}

/// Sets to `null` each key of `before` that `after` leaves out, in nested objects too (a merge
/// patch replaces lists whole, so only objects need it).
fn clear_missing(before: &Value, after: &mut Value) {
    if let (Value::Object(before), Value::Object(after)) = (before, after) {
        for (key, old) in before {
            match after.get_mut(key) {
                None => {
                    after.insert(key.clone(), Value::Null);
                }
                Some(new) => clear_missing(old, new),
            }
        }
    }
}

/// Writes `new` as the status of the object `name` that `api` reaches (a merge patch that also
/// clears fields `observed` had and `new` leaves out; see [`status_patch`]), counted as a write.
pub async fn write_status<K, S>(api: &Api<K>, name: &str, observed: Option<&S>, new: &S) -> Result<()>
where
    K: Resource + DeserializeOwned + Clone + Debug,
    K::DynamicType: Default,
    S: Serialize,
{
    let kind = K::kind(&K::DynamicType::default()).into_owned();
    count_write(&kind, "status");
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(status_patch(observed, new)))
        .await
        .map(|_| ())
        .map_err(|source| Error::Kube { context: format!("writing status of {kind} {name}"), source })
}

/// Server-side applies `obj` (forcing ownership of the fields it sets) and returns what was stored.
pub async fn apply<K>(api: &Api<K>, obj: &K) -> Result<K>
where
    K: Resource + Serialize + DeserializeOwned + Clone + Debug,
    K::DynamicType: Default,
{
    let name = obj.name_any();
    let params = PatchParams::apply(FIELD_MANAGER).force();
    count_write(&K::kind(&K::DynamicType::default()), "apply");
    api.patch(&name, &params, &Patch::Apply(obj)).await.map_err(|source| Error::Kube {
        context: format!("applying {} {}", K::kind(&K::DynamicType::default()), name),
        source,
    })
}

/// Creates `obj` with a plain create under Commons' field manager and returns what was stored, or
/// `None` when an object of that name already exists.
pub async fn create<K>(api: &Api<K>, obj: &K) -> Result<Option<K>>
where
    K: Resource + Serialize + DeserializeOwned + Clone + Debug,
    K::DynamicType: Default,
{
    let params = PostParams { dry_run: false, field_manager: Some(FIELD_MANAGER.into()) };
    count_write(&K::kind(&K::DynamicType::default()), "create");
    match api.create(&params, obj).await {
        Ok(stored) => Ok(Some(stored)),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(None),
        Err(source) => Err(Error::Kube {
            context: format!("creating {} {}", K::kind(&K::DynamicType::default()), obj.name_any()),
            source,
        }),
    }
}

/// Makes `desired` so, `observed` being what the store shows of it (`None`: nothing), and
/// returns what was stored. An object the store does not show is created (the cheapest write);
/// otherwise, or when it turns out to exist after all, it is server-side applied, after the fields
/// Commons holds on it through its create are made its applied fields (see [`crate::ownership`]),
/// so a field Commons stops setting is removed.
pub async fn create_or_update<K, O>(
    api: &Api<K>,
    desired: &K,
    observed: Option<&O>,
    compare: Compare,
) -> Result<K>
where
    K: Resource + Serialize + DeserializeOwned + Clone + Debug,
    K::DynamicType: Default,
    O: Resource,
{
    Ok(made_so(api, desired, observed, compare).await?.0)
}

/// What a write did to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wrote {
    /// It was as wanted: nothing was sent.
    Nothing,
    /// This call created it: nothing of that name existed a moment before.
    Created,
    /// It existed and was changed (or found as wanted after a create that met it).
    Changed,
}

/// [`create_or_update`], also saying whether this call created the object.
async fn made_so<K, O>(
    api: &Api<K>,
    desired: &K,
    observed: Option<&O>,
    compare: Compare,
) -> Result<(K, Wrote)>
where
    K: Resource + Serialize + DeserializeOwned + Clone + Debug,
    K::DynamicType: Default,
    O: Resource,
{
    let name = desired.name_any();
    match observed {
        None => {
            if let Some(stored) = create(api, desired).await? {
                return Ok((stored, Wrote::Created));
            }
            // It exists: most often Commons' own, made a moment ago by an earlier reconcile whose
            // write the store has not caught up with. Read it, and leave it if it is as wanted.
            let found = api.get(&name).await.map_err(|source| Error::Kube {
                context: format!("reading {} {name}", K::kind(&K::DynamicType::default())),
                source,
            })?;
            if why_write(desired, Some(&found), compare).is_none() {
                return Ok((found, Wrote::Changed));
            }
            crate::ownership::make_applied(api, &name, Some(found.meta())).await?;
        }
        Some(o) if crate::ownership::held_by_create(o.meta()) => {
            crate::ownership::make_applied(api, &name, Some(o.meta())).await?;
        }
        Some(_) => {}
    }
    Ok((apply(api, desired).await?, Wrote::Changed))
}

/// Makes `desired` so unless `observed` already matches it (see [`create_or_update`]). Returns
/// whether it wrote.
pub async fn apply_if_changed<K, O>(api: &Api<K>, desired: &K, observed: Option<&O>) -> Result<bool>
where
    K: Resource + Serialize + DeserializeOwned + Clone + Debug,
    K::DynamicType: Default,
    O: Resource + Serialize,
{
    write(api, desired, observed, Compare::Sets).await
}

/// Makes `desired` so unless `observed` already matches it as `compare` says (see
/// [`create_or_update`]). Returns whether it wrote.
pub async fn write<K, O>(api: &Api<K>, desired: &K, observed: Option<&O>, compare: Compare) -> Result<bool>
where
    K: Resource + Serialize + DeserializeOwned + Clone + Debug,
    K::DynamicType: Default,
    O: Resource + Serialize,
{
    Ok(write_saying(api, desired, observed, compare).await? != Wrote::Nothing)
}

/// [`write`], saying what it did.
pub async fn write_saying<K, O>(
    api: &Api<K>,
    desired: &K,
    observed: Option<&O>,
    compare: Compare,
) -> Result<Wrote>
where
    K: Resource + Serialize + DeserializeOwned + Clone + Debug,
    K::DynamicType: Default,
    O: Resource + Serialize,
{
    let Some(why) = why_write(desired, observed, compare) else {
        return Ok(Wrote::Nothing);
    };
    tracing::info!(kind = %K::kind(&K::DynamicType::default()), name = %desired.name_any(), namespace = ?desired.namespace(), %why, "applying");
    Ok(made_so(api, desired, observed, compare).await?.1)
}

/// Makes `desired` exist as it is, for the owner `owner_uid`, never taking over an object that
/// belongs to something else ([`Error::Taken`]): one the store shows must be controlled by the
/// owner; one it does not show is read first (the store may lag behind Commons' own write, or the
/// name may be taken by an object outside what Commons watches). A new object is created, a
/// changed one applied (see [`create_or_update`]).
pub async fn create_or_apply<K, O>(
    api: &Api<K>,
    desired: &K,
    observed: Option<&O>,
    owner_uid: &str,
) -> Result<bool>
where
    K: Resource + Serialize + DeserializeOwned + Clone + Debug,
    K::DynamicType: Default,
    O: Resource + Serialize,
{
    let kind = K::kind(&K::DynamicType::default()).into_owned();
    let name = desired.name_any();
    let controlled = |o: &kube::api::ObjectMeta| {
        o.owner_references.iter().flatten().any(|r| r.controller == Some(true) && r.uid == owner_uid)
    };
    let taken = || Error::Taken {
        kind: kind.clone(),
        namespace: desired.namespace().unwrap_or_default(),
        name: name.clone(),
    };
    match observed {
        Some(o) if controlled(o.meta()) => apply_if_changed(api, desired, Some(o)).await,
        Some(_) => Err(taken()),
        None => {
            let found = api
                .get_opt(&name)
                .await
                .map_err(|source| Error::Kube { context: format!("reading {kind} {name}"), source })?;
            match found {
                Some(f) if !controlled(f.meta()) => Err(taken()),
                found => apply_if_changed(api, desired, found.as_ref()).await,
            }
        }
    }
}

/// Deletes an object in the background; one already gone is not an error.
pub async fn delete<K>(api: &Api<K>, name: &str) -> Result<()>
where
    K: Resource + DeserializeOwned + Clone + Debug,
    K::DynamicType: Default,
{
    count_write(&K::kind(&K::DynamicType::default()), "delete");
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(source) => Err(Error::Kube {
            context: format!("deleting {} {name}", K::kind(&K::DynamicType::default())),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_status_patch_clears_fields_that_became_empty() {
        #[derive(serde::Serialize)]
        struct St {
            #[serde(skip_serializing_if = "Vec::is_empty")]
            members: Vec<String>,
            count: i32,
        }
        let before = St { members: vec!["gone".into()], count: 1 };
        let after = St { members: vec![], count: 0 };
        assert_eq!(status_patch(Some(&before), &after), json!({"status": {"members": null, "count": 0}}));
        assert_eq!(status_patch(None, &after), json!({"status": {"count": 0}}));
        let still = St { members: vec!["here".into()], count: 1 };
        assert_eq!(status_patch(Some(&before), &still), json!({"status": {"members": ["here"], "count": 1}}));
        let nested_before =
            serde_json::json!({"budget": {"period": "2026-12", "thresholdsReached": [80, 100]}});
        let nested_after = serde_json::json!({"budget": {"period": "2026-12"}});
        assert_eq!(
            status_patch(Some(&nested_before), &nested_after),
            serde_json::json!({"status": {"budget": {"period": "2026-12", "thresholdsReached": null}}}),
            "a nested list that became empty is cleared too"
        );
    }
}
