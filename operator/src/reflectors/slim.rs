//! The children Commons makes, as the stores keep them: [`Slim`] holds an object's identity and
//! owners as typed metadata and everything else as one compact JSON text.
//!
//! A typed `k8s-openapi` object is mostly empty room: every `Option` field takes its full size,
//! every label map and selector is a B-tree node of eleven slots, every string a heap allocation
//! of its own. The controllers only compare these children with what they want (and the webhook
//! reads a quota's two lists of amounts), so the stores keep them as text and decode one only
//! when it is read. Measured on the local control plane with 1,000 tenancies: see docs/tenancy.md
//! ("Figures").

use std::marker::PhantomData;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// An object of kind `K` as a store keeps it: what identifies it and whom it belongs to
/// (name, namespace, owner references, uid, resourceVersion, deletion) typed, the rest (labels,
/// annotations, `spec`, `status`, rules, subjects, …) as compact JSON. It serialises to the same
/// JSON the object would, and [`Slim::object`] gives the object back.
///
/// Its typed metadata has no labels or annotations (`ResourceExt::labels` is empty): read them
/// from [`Slim::object`]. The watches of these kinds select Commons' own objects by label on the
/// apiserver, and owners are found by owner reference, so nothing reads them from a store.
pub struct Slim<K> {
    metadata: ObjectMeta,
    rest: Box<str>,
    kind: PhantomData<fn() -> K>,
}

impl<K> Clone for Slim<K> {
    fn clone(&self) -> Self {
        Slim { metadata: self.metadata.clone(), rest: self.rest.clone(), kind: PhantomData }
    }
}

impl<K: Resource<DynamicType = ()>> std::fmt::Debug for Slim<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slim")
            .field("kind", &K::kind(&()))
            .field("name", &self.metadata.name)
            .field("namespace", &self.metadata.namespace)
            .finish_non_exhaustive()
    }
}

impl<K> Resource for Slim<K>
where
    K: Resource<DynamicType = ()>,
{
    type DynamicType = ();
    type Scope = K::Scope;

    fn kind(dt: &()) -> std::borrow::Cow<'_, str> {
        K::kind(dt)
    }
    fn group(dt: &()) -> std::borrow::Cow<'_, str> {
        K::group(dt)
    }
    fn version(dt: &()) -> std::borrow::Cow<'_, str> {
        K::version(dt)
    }
    fn api_version(dt: &()) -> std::borrow::Cow<'_, str> {
        K::api_version(dt)
    }
    fn plural(dt: &()) -> std::borrow::Cow<'_, str> {
        K::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl<K> Slim<K>
where
    K: Resource<DynamicType = ()> + Serialize + DeserializeOwned,
{
    /// Keeps `object`: its identity and owners typed (less `managedFields`, which nothing reads, but
    /// for [`crate::ownership::mark`]'s marker),
    /// the rest as text.
    pub fn new(mut object: K) -> Result<Slim<K>, serde_json::Error> {
        let mut metadata = std::mem::take(object.meta_mut());
        crate::ownership::mark(&mut metadata);
        // Labels and annotations go with the text: as a typed map each is a B-tree node of its own.
        object.meta_mut().labels = metadata.labels.take();
        object.meta_mut().annotations = metadata.annotations.take();
        let mut rest = serde_json::to_value(&object)?;
        if let Some(map) = rest.as_object_mut() {
            map.remove("apiVersion");
            map.remove("kind");
            if map.get("metadata").and_then(Value::as_object).is_some_and(serde_json::Map::is_empty) {
                map.remove("metadata");
            }
        }
        Ok(Slim { metadata, rest: serde_json::to_string(&rest)?.into_boxed_str(), kind: PhantomData })
    }

    /// The object as JSON, as the apiserver would give it (without `managedFields`).
    pub fn value(&self) -> Result<Value, serde_json::Error> {
        let mut value: Value = serde_json::from_str(&self.rest)?;
        if let Some(map) = value.as_object_mut() {
            map.insert("apiVersion".into(), Value::String(K::api_version(&()).into_owned()));
            map.insert("kind".into(), Value::String(K::kind(&()).into_owned()));
            let mut metadata = serde_json::to_value(&self.metadata)?;
            if let (Some(typed), Some(Value::Object(text))) =
                (metadata.as_object_mut(), map.remove("metadata"))
            {
                typed.extend(text);
            }
            map.insert("metadata".into(), metadata);
        }
        Ok(value)
    }

    /// The object itself, decoded.
    pub fn object(&self) -> Result<K, serde_json::Error> {
        serde_json::from_value(self.value()?)
    }
}

impl<K> Serialize for Slim<K>
where
    K: Resource<DynamicType = ()> + Serialize + DeserializeOwned,
{
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value().map_err(serde::ser::Error::custom)?.serialize(serializer)
    }
}

impl<'de, K> Deserialize<'de> for Slim<K>
where
    K: Resource<DynamicType = ()> + Serialize + DeserializeOwned,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Slim::new(K::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ResourceQuota;
    use k8s_openapi::api::networking::v1::NetworkPolicy;
    use serde_json::json;

    fn policy() -> Value {
        json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {
                "name": "commons-baseline",
                "namespace": "t-app",
                "labels": {"app.kubernetes.io/managed-by": "commons", "commons.dev/tenancy": "t"},
                "ownerReferences": [{"apiVersion": "commons.dev/v1alpha1", "kind": "Tenancy", "name": "t",
                                     "uid": "u-1", "controller": true, "blockOwnerDeletion": true}],
                "uid": "p-1",
                "resourceVersion": "42",
                "managedFields": [{"manager": "commons", "operation": "Apply"}]
            },
            "spec": {
                "podSelector": {},
                "policyTypes": ["Ingress"],
                "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "t-data"}}}]}]
            }
        })
    }

    #[test]
    fn a_slim_object_keeps_only_the_marker_of_a_create_to_hand_over() {
        let mut created = policy();
        created["metadata"]["managedFields"] = json!([{"manager": "commons", "operation": "Update",
                                                       "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}]);
        let slim: Slim<NetworkPolicy> = serde_json::from_value(created).unwrap();
        assert_eq!(slim.meta().managed_fields, Some(vec![]), "the marker, and nothing of the entry");
        assert!(crate::ownership::held_by_create(slim.meta()));
        let slim: Slim<NetworkPolicy> = serde_json::from_value(policy()).unwrap();
        assert_eq!(slim.meta().managed_fields, None, "applied: nothing kept");
    }

    #[test]
    fn a_slim_object_serialises_as_the_object_did_less_managed_fields() {
        let slim: Slim<NetworkPolicy> = serde_json::from_value(policy()).unwrap();
        let mut want = policy();
        want["metadata"].as_object_mut().unwrap().remove("managedFields");
        assert_eq!(serde_json::to_value(&slim).unwrap(), want);
        assert_eq!(slim.meta().owner_references.as_ref().map(Vec::len), Some(1), "owners stay typed");
        assert_eq!(slim.meta().labels, None, "labels are kept with the text");
        assert_eq!(
            slim.object().unwrap().metadata.labels.map(|l| l["commons.dev/tenancy"].clone()),
            Some("t".into())
        );
    }

    #[test]
    fn the_object_comes_back_whole() {
        let slim: Slim<NetworkPolicy> = serde_json::from_value(policy()).unwrap();
        let mut want: NetworkPolicy = serde_json::from_value(policy()).unwrap();
        want.metadata.managed_fields = None;
        assert_eq!(slim.object().unwrap(), want);
        let quota: Slim<ResourceQuota> = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "ResourceQuota",
            "metadata": {"name": "commons-share", "namespace": "t-app"},
            "spec": {"hard": {"cpu": "2"}},
            "status": {"hard": {"cpu": "2"}, "used": {"cpu": "500m"}}
        }))
        .unwrap();
        let used = quota.object().unwrap().status.and_then(|s| s.used).unwrap();
        assert_eq!(used["cpu"].0, "500m");
    }

    #[test]
    fn comparing_with_a_slim_object_is_comparing_with_the_object() {
        let slim: Slim<NetworkPolicy> = serde_json::from_value(policy()).unwrap();
        let full: NetworkPolicy = serde_json::from_value(policy()).unwrap();
        let mut desired = full.clone();
        desired.metadata = ObjectMeta {
            name: full.metadata.name.clone(),
            namespace: full.metadata.namespace.clone(),
            labels: full.metadata.labels.clone(),
            owner_references: full.metadata.owner_references.clone(),
            ..ObjectMeta::default()
        };
        assert_eq!(crate::compare::difference(&desired, Some(&slim)), None);
        desired.spec.as_mut().unwrap().policy_types = Some(vec!["Ingress".into(), "Egress".into()]);
        assert_eq!(
            crate::compare::difference(&desired, Some(&slim)),
            crate::compare::difference(&desired, Some(&full)),
        );
        assert!(crate::compare::difference(&desired, Some(&slim)).is_some());
        // A label changed by someone else is seen too.
        let mut relabelled = policy();
        relabelled["metadata"]["labels"]["commons.dev/tenancy"] = json!("other");
        let slim: Slim<NetworkPolicy> = serde_json::from_value(relabelled).unwrap();
        desired.spec = full.spec.clone();
        assert_eq!(
            crate::compare::difference(&desired, Some(&slim)),
            Some(".metadata.labels.commons.dev/tenancy: want \"t\", have \"other\"".into())
        );
    }
}
