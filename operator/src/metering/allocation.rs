//! What an object holds, in the units prices are per (pure): CPU cores and GiB of memory for a
//! pod (its effective requests, as the quota webhook counts them: init steps, sidecars, pod-level
//! requests, overhead, and an in-place resize from the instant it takes effect), GiB of storage for
//! a PersistentVolumeClaim, one load balancer for a Service of that type.

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Service};
use rust_decimal::Decimal;

use super::rating::Resource;
use crate::admission::usage::{self, resources};
use crate::quantity::Milli;
use crate::tenancy::quota::Amounts;

/// Bytes in a GiB.
const GIB: i64 = 1 << 30;

/// A milli-unit amount as a decimal of whole units.
fn units(m: Milli) -> Decimal {
    // Quantities the apiserver accepts fit in 96 bits of milli-units by far; a larger one (which
    // it would never hold) counts as the largest Decimal rather than wrapping.
    Decimal::try_from_i128_with_scale(m.0, 3).unwrap_or(Decimal::MAX).normalize()
}

fn gib(m: Milli) -> Decimal {
    (units(m) / Decimal::from(GIB)).normalize()
}

fn amount(amounts: &Amounts, name: &str) -> Milli {
    amounts.get(name).copied().unwrap_or_default()
}

/// A pod's CPU cores and GiB of memory.
pub fn pod(p: &Pod) -> Vec<(Resource, Decimal)> {
    let a = usage::pod(p);
    vec![
        (Resource::Cpu, units(amount(&a, resources::CPU))),
        (Resource::Memory, gib(amount(&a, resources::MEMORY))),
    ]
}

/// A claim's GiB of storage.
pub fn claim(c: &PersistentVolumeClaim) -> Vec<(Resource, Decimal)> {
    vec![(Resource::Storage, gib(amount(&usage::persistent_volume_claim(c), resources::STORAGE)))]
}

/// A Service's load balancers (one, or none).
pub fn service(s: &Service) -> Vec<(Resource, Decimal)> {
    let n = units(amount(&usage::service(s), resources::LOAD_BALANCERS));
    if n.is_zero() { vec![] } else { vec![(Resource::LoadBalancer, n)] }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::dec;

    #[test]
    fn amounts_become_the_units_prices_are_per() {
        let p: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {
                "initContainers": [{"name": "init", "image": "x", "resources": {"requests": {"cpu": "2", "memory": "1Gi"}}}],
                "containers": [
                    {"name": "a", "image": "x", "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}}},
                    {"name": "b", "image": "x", "resources": {"requests": {"cpu": "0.5", "memory": "256Mi"}}}
                ]
            }
        }))
        .unwrap();
        // The init step (2 cores, 1 GiB) is larger than the containers together (0.75, 0.75 GiB).
        assert_eq!(pod(&p), vec![(Resource::Cpu, dec!(2)), (Resource::Memory, dec!(1))]);
        let c: PersistentVolumeClaim = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "c"}, "spec": {"resources": {"requests": {"storage": "1536Mi"}}}
        }))
        .unwrap();
        assert_eq!(claim(&c), vec![(Resource::Storage, dec!(1.5))]);
        let lb: Service = serde_json::from_value(
            serde_json::json!({"metadata": {"name": "s"}, "spec": {"type": "LoadBalancer"}}),
        )
        .unwrap();
        let plain: Service = serde_json::from_value(
            serde_json::json!({"metadata": {"name": "s"}, "spec": {"type": "ClusterIP"}}),
        )
        .unwrap();
        assert_eq!(service(&lb), vec![(Resource::LoadBalancer, dec!(1))]);
        assert_eq!(service(&plain), vec![]);
    }
}
