//! Network segments on the real control plane: admission, the NetworkPolicies that realise the
//! paths, and the reachability matrix computed from the live policies, namespaces and pods.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::time::Duration;

use commons_crds::{NetworkSegment, Tenancy};
use commons_e2e::{
    apply_raw, client, event_reasons, install_crds, restricted_pod, wait_for, wait_for_condition,
};
use commons_operator::reachability::{Peer, Port};
use commons_operator::reachability_cmd::{load, matrix};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

const TENANCIES: [(&str, &str, &str, &[&str]); 5] = [
    ("seg-council-a", "local-government", "official", &["e2e-psn"]),
    ("seg-council-b", "local-government", "official", &["e2e-psn"]),
    ("seg-trust", "health", "official", &["e2e-hscn"]),
    ("seg-police", "criminal-justice", "official-sensitive", &["e2e-secure"]),
    // Education is not admitted to e2e-psn: refused.
    ("seg-school", "education", "official", &["e2e-psn"]),
];

fn tenancy(name: &str, sector: &str, classification: &str, segments: &[&str]) -> Value {
    json!({
        "apiVersion": "commons.dev/v1alpha1", "kind": "Tenancy", "metadata": {"name": name},
        "spec": {
            "organisation": {"id": name, "displayName": name, "sector": sector, "costCentre": "SEG", "contactEmail": "seg@example.gov.uk"},
            "classification": classification,
            "owners": [{"kind": "Group", "name": format!("{name}-admins")}],
            "deletionProtection": false,
            "namespaces": [{"name": "app"}],
            "networkSegments": segments
        }
    })
}

fn segment(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "commons.dev/v1alpha1", "kind": "NetworkSegment", "metadata": {"name": name}, "spec": spec})
}

async fn segment_policies(client: &Client, name: &str, want: i32) {
    let api: Api<NetworkSegment> = Api::all(client.clone());
    wait_for(&format!("segment {name} with {want} policies"), Duration::from_secs(60), || {
        let api = api.clone();
        async move {
            let s = api.get(name).await.ok()?;
            let st = s.status?;
            (st.observed_generation == s.metadata.generation && st.policies == want).then_some(())
        }
    })
    .await
    .unwrap();
}

/// The matrix among our five tenancies, as "from->to" pairs that are reachable (self excluded).
async fn reachable_pairs(client: &Client) -> Vec<String> {
    let snapshot = load(client).await.unwrap();
    let m = matrix(&snapshot, false);
    let ours: Vec<usize> =
        (0..m.names.len()).filter(|i| TENANCIES.iter().any(|t| t.0 == m.names[*i])).collect();
    assert_eq!(ours.len(), 5, "every test tenancy has a pod: {:?}", m.names);
    let mut pairs = vec![];
    for &i in &ours {
        for &j in &ours {
            if i != j && m.reach[i][j] {
                pairs.push(format!("{}->{}", m.names[i], m.names[j]));
            }
        }
        assert!(m.reach[i][i], "{} must reach itself", m.names[i]);
    }
    pairs.sort();
    pairs
}

/// Waits up to 60 s for the live matrix to equal `want`; fails showing the last matrix seen.
async fn expect_matrix(client: &Client, want: &[&str]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let got = reachable_pairs(client).await;
        if got == want {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "reachability {got:?}, wanted {want:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn segments_admit_by_rule_and_the_live_policies_give_exactly_the_intended_matrix() {
    let client = client().await.unwrap();
    install_crds(&client).await.unwrap();
    for (name, spec) in [
        (
            "e2e-psn",
            json!({"description": "psn", "admission": {"sectors": ["local-government"]},
                   "egress": [{"cidr": "51.0.0.0/8", "except": ["51.255.0.0/16"], "ports": [{"port": 443}]}]}),
        ),
        (
            "e2e-hscn",
            json!({"description": "hscn", "admission": {"sectors": ["health"]}, "peers": ["e2e-psn"]}),
        ),
        ("e2e-secure", json!({"description": "secure", "classification": "official-sensitive"})),
    ] {
        apply_raw::<NetworkSegment>(&client, None, segment(name, spec)).await.unwrap();
    }
    for (name, sector, class, segs) in TENANCIES {
        apply_raw::<Tenancy>(&client, None, tenancy(name, sector, class, segs)).await.unwrap();
    }
    for (name, ..) in TENANCIES {
        wait_for_condition(&client, name, "Ready", "True", None, Duration::from_secs(60)).await.unwrap();
        // One plain pod per tenancy carrying the label contract: exposed to its segments.
        let pods: Api<Pod> = Api::namespaced(client.clone(), &format!("{name}-app"));
        if pods.get_opt("svc").await.unwrap().is_none() {
            let mut pod = restricted_pod("svc");
            pod["metadata"]["labels"] = json!({"app": "svc", "commons.dev/exposure": "segment"});
            pod["spec"]["containers"][0]["ports"] = json!([{"name": "http", "containerPort": 8080}]);
            pods.create(&PostParams::default(), &serde_json::from_value(pod).unwrap()).await.unwrap();
        }
    }
    segment_policies(&client, "e2e-psn", 4).await;
    segment_policies(&client, "e2e-hscn", 2).await;
    segment_policies(&client, "e2e-secure", 2).await;

    // Admission shows on both sides, with the reason.
    let psn = Api::<NetworkSegment>::all(client.clone()).get("e2e-psn").await.unwrap().status.unwrap();
    assert_eq!(psn.members, ["seg-council-a", "seg-council-b"]);
    assert_eq!(
        (psn.refused[0].tenancy.as_str(), psn.refused[0].reason.as_str()),
        ("seg-school", "SectorNotAdmitted")
    );
    let school = wait_for_condition(
        &client,
        "seg-school",
        "NetworkReady",
        "True",
        Some("SegmentsRefused"),
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    let membership = &school.status.unwrap().segments[0];
    assert_eq!(membership.reason.as_deref(), Some("SectorNotAdmitted"));
    // And as Events on both.
    let on_segment = event_reasons(&client, "NetworkSegment", "e2e-psn").await.unwrap();
    assert!(
        on_segment.contains(&"MemberRefused".to_owned()) && on_segment.contains(&"MemberJoined".to_owned()),
        "{on_segment:?}"
    );
    let on_tenancy = event_reasons(&client, "Tenancy", "seg-school").await.unwrap();
    assert!(on_tenancy.contains(&"SegmentRefused".to_owned()), "{on_tenancy:?}");

    // psn members reach each other; hscn lists psn as a peer, so psn members reach the trust
    // (not the other way); the sensitive and the refused tenancies are reached by nobody.
    expect_matrix(
        &client,
        &[
            "seg-council-a->seg-council-b",
            "seg-council-a->seg-trust",
            "seg-council-b->seg-council-a",
            "seg-council-b->seg-trust",
        ],
    )
    .await;

    // The psn members' egress rule opens 51.0.0.0/8 (except 51.255.0.0/16) on TCP 443 only.
    let snapshot = load(&client).await.unwrap();
    let pod = |tenancy: &str| {
        snapshot
            .pods
            .iter()
            .find(|p| p.metadata.namespace.as_deref() == Some(&format!("{tenancy}-app")))
            .unwrap()
    };
    let out = |tenancy: &str, ip: &str, port: u16| {
        snapshot.allowed(
            Peer::Pod(pod(tenancy)),
            Peer::External(ip.parse().unwrap()),
            &Port { protocol: "TCP".into(), number: port },
        )
    };
    assert!(out("seg-council-a", "51.4.3.2", 443));
    assert!(!out("seg-council-a", "51.4.3.2", 80), "only the listed port");
    assert!(!out("seg-council-a", "51.255.0.1", 443), "the except range stays closed");
    assert!(!out("seg-trust", "51.4.3.2", 443), "hscn opens no egress");
    assert!(!out("seg-council-a", "8.8.8.8", 443), "nothing else outside is open");

    // Changing a segment's rules re-evaluates its members: admit education, and the school joins.
    apply_raw::<NetworkSegment>(
        &client,
        None,
        segment("e2e-psn", json!({"description": "psn", "admission": {"sectors": ["local-government", "education"]}, "egress": [{"cidr": "51.0.0.0/8", "except": ["51.255.0.0/16"], "ports": [{"port": 443}]}]})),
    )
    .await
    .unwrap();
    segment_policies(&client, "e2e-psn", 6).await;
    expect_matrix(
        &client,
        &[
            "seg-council-a->seg-council-b",
            "seg-council-a->seg-school",
            "seg-council-a->seg-trust",
            "seg-council-b->seg-council-a",
            "seg-council-b->seg-school",
            "seg-council-b->seg-trust",
            "seg-school->seg-council-a",
            "seg-school->seg-council-b",
            "seg-school->seg-trust",
        ],
    )
    .await;
    // And narrowing them again drops it at once.
    apply_raw::<NetworkSegment>(
        &client,
        None,
        segment("e2e-psn", json!({"description": "psn", "admission": {"sectors": ["local-government"]}, "egress": [{"cidr": "51.0.0.0/8", "except": ["51.255.0.0/16"], "ports": [{"port": 443}]}]})),
    )
    .await
    .unwrap();
    segment_policies(&client, "e2e-psn", 4).await;

    // A tenancy leaves a segment: its paths close at once.
    apply_raw::<Tenancy>(&client, None, tenancy("seg-council-b", "local-government", "official", &[]))
        .await
        .unwrap();
    segment_policies(&client, "e2e-psn", 2).await;
    expect_matrix(&client, &["seg-council-a->seg-trust"]).await;
    // Both statuses say so: the segment lists one member, and the tenancy, asking for no segment
    // now, lists none (a list that became empty is cleared, not left behind).
    wait_for("statuses show the tenancy left", Duration::from_secs(30), || {
        let client = client.clone();
        async move {
            let psn = Api::<NetworkSegment>::all(client.clone()).get("e2e-psn").await.ok()?.status?;
            let t = Api::<Tenancy>::all(client.clone()).get("seg-council-b").await.ok()?.status?;
            (psn.members == ["seg-council-a"] && t.segments.is_empty()).then_some(())
        }
    })
    .await
    .unwrap();

    // Deleting a segment removes its paths: everyone is back at the baseline.
    for s in ["e2e-psn", "e2e-hscn", "e2e-secure"] {
        Api::<NetworkSegment>::all(client.clone()).delete(s, &DeleteParams::foreground()).await.unwrap();
    }
    expect_matrix(&client, &[]).await;
    for (name, ..) in TENANCIES {
        Api::<Tenancy>::all(client.clone()).delete(name, &DeleteParams::background()).await.unwrap();
    }
}

#[tokio::test]
async fn outside_ranges_covering_the_cluster_networks_are_cut_out_and_reported() {
    let client = client().await.unwrap();
    install_crds(&client).await.unwrap();
    // The local cloud's operator knows its pod and service networks (e2e/commons.sh):
    // 10.0.0.0/16 and 10.96.0.0/16.
    let wide = json!({"description": "too wide", "admission": {"tenancies": ["seg-wide"]},
        "egress": [{"cidr": "0.0.0.0/0"}, {"cidr": "10.0.5.0/24", "ports": [{"port": 443}]}],
        "ingress": [{"cidr": "51.0.0.0/8"}]});
    apply_raw::<NetworkSegment>(&client, None, segment("e2e-wide", wide)).await.unwrap();
    apply_raw::<Tenancy>(&client, None, tenancy("seg-wide", "local-government", "official", &["e2e-wide"]))
        .await
        .unwrap();
    wait_for_condition(&client, "seg-wide", "Ready", "True", None, Duration::from_secs(60)).await.unwrap();
    segment_policies(&client, "e2e-wide", 2).await;

    let ranges = |client: Client| async move {
        let s = Api::<NetworkSegment>::all(client).get("e2e-wide").await.ok()?;
        let st = s.status?;
        (st.observed_generation == s.metadata.generation)
            .then(|| st.conditions.into_iter().find(|c| c.type_ == "RangesOutsideCluster"))?
    };
    let found = wait_for("RangesOutsideCluster=False", Duration::from_secs(30), || {
        let client = client.clone();
        async move { ranges(client).await.filter(|c| c.status == "False") }
    })
    .await
    .unwrap();
    assert_eq!(found.reason, "ClusterNetworkExcluded");
    assert!(
        found
            .message
            .contains("spec.egress[0].cidr 0.0.0.0/0 covers the cluster network 10.0.0.0/16, 10.96.0.0/16"),
        "{}",
        found.message
    );
    assert!(
        found.message.contains("spec.egress[1].cidr 10.0.5.0/24 lies inside the cluster network 10.0.0.0/16")
    );
    assert!(
        event_reasons(&client, "NetworkSegment", "e2e-wide")
            .await
            .unwrap()
            .contains(&"ClusterNetworkExcluded".to_owned())
    );

    // What is applied: everything outside the cluster, and nothing inside it.
    let np: Api<k8s_openapi::api::networking::v1::NetworkPolicy> =
        Api::namespaced(client.clone(), "seg-wide-app");
    let egress = np.get("commons-segment-e2e-wide-egress").await.unwrap().spec.unwrap().egress.unwrap();
    let blocks: Vec<_> =
        egress.iter().flat_map(|r| r.to.iter().flatten()).filter_map(|p| p.ip_block.clone()).collect();
    assert_eq!(blocks.len(), 1, "{blocks:?}");
    assert_eq!(blocks[0].cidr, "0.0.0.0/0");
    assert_eq!(blocks[0].except.as_deref(), Some(&["10.0.0.0/16".to_owned(), "10.96.0.0/16".to_owned()][..]));

    // Narrowed to the outside: reported as applied as written.
    let narrow = json!({"description": "outside only", "admission": {"tenancies": ["seg-wide"]},
        "egress": [{"cidr": "51.0.0.0/8"}]});
    apply_raw::<NetworkSegment>(&client, None, segment("e2e-wide", narrow)).await.unwrap();
    wait_for("RangesOutsideCluster=True", Duration::from_secs(30), || {
        let client = client.clone();
        async move { ranges(client).await.filter(|c| c.status == "True") }
    })
    .await
    .unwrap();
    Api::<NetworkSegment>::all(client.clone()).delete("e2e-wide", &DeleteParams::foreground()).await.unwrap();
    Api::<Tenancy>::all(client.clone()).delete("seg-wide", &DeleteParams::background()).await.unwrap();
}
