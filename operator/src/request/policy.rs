//! The auto-approval policy: rules a platform team writes (`commons run --request-policy FILE`)
//! under which a tenancy request is approved at once, without waiting for a person. A request is
//! approved by the first rule all of whose conditions hold, and the decision names the rule and
//! why; no rule ever denies (a refusal is a person's decision, with a reason). With no policy, or
//! no rule matching, the request waits for a platform admin.

use commons_crds::tenancy::TenancySpec;
use commons_crds::{Classification, Sector};
use serde::Deserialize;

use crate::quantity::Milli;

/// The policy file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The rules, tried in order.
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// One rule: every condition given must hold.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Rule {
    /// Named in the decision (`decidedBy: policy:<name>`).
    pub name: String,
    /// The organisation's sector is one of these.
    #[serde(default)]
    pub sectors: Vec<Sector>,
    /// The classification is one of these.
    #[serde(default)]
    pub classifications: Vec<Classification>,
    /// The tenancy is a sandbox (has `expiresAt`) expiring within this many days of the decision.
    #[serde(default)]
    pub sandbox_max_days: Option<u32>,
    /// The quota asks for at most these (each limit given must be set in the request and within it).
    #[serde(default)]
    pub max_quota: Option<MaxQuota>,
}

/// Ceilings on the quota asked for.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MaxQuota {
    /// CPU (a quantity).
    pub cpu: Option<String>,
    /// Memory (a quantity).
    pub memory: Option<String>,
    /// Storage (a quantity).
    pub storage: Option<String>,
    /// Pods.
    pub pods: Option<i32>,
    /// LoadBalancer Services.
    pub load_balancers: Option<i32>,
}

/// Why a policy file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// Not YAML of the policy's shape.
    #[error("--request-policy: {0}")]
    Shape(String),
    /// A rule that could never be read right.
    #[error("--request-policy: rule {rule}: {reason}")]
    Rule {
        /// The rule.
        rule: String,
        /// What is wrong.
        reason: String,
    },
}

impl Policy {
    /// Reads and checks a policy file's text.
    pub fn parse(yaml: &str) -> Result<Policy, PolicyError> {
        let policy: Policy = serde_saphyr::from_str(yaml).map_err(|e| PolicyError::Shape(e.to_string()))?;
        let mut names = std::collections::BTreeSet::new();
        for rule in &policy.rules {
            let bad = |reason: &str| PolicyError::Rule { rule: rule.name.clone(), reason: reason.into() };
            if rule.name.is_empty() || !names.insert(rule.name.clone()) {
                return Err(bad("every rule needs a name of its own"));
            }
            if let Some(max) = &rule.max_quota {
                for (field, value) in [("cpu", &max.cpu), ("memory", &max.memory), ("storage", &max.storage)]
                {
                    if let Some(v) = value
                        && v.parse::<Milli>().is_err()
                    {
                        return Err(bad(&format!("maxQuota.{field} {v:?} is not a Kubernetes quantity")));
                    }
                }
            }
        }
        Ok(policy)
    }

    /// The rule that approves `tenancy` at `now`, and why; `None` leaves it to a person. A tenancy
    /// asking to join network segments, for anything beyond the safe defaults (`allowed`), or for
    /// a weaker pod security level is never approved by a rule: a person looks at those.
    pub fn approves(&self, tenancy: &TenancySpec, now: jiff::Timestamp) -> Option<(String, String)> {
        if !tenancy.network_segments.is_empty()
            || tenancy.allowed.is_some()
            || tenancy.pod_security != commons_crds::tenancy::PodSecurityLevel::default()
        {
            return None;
        }
        self.rules.iter().find_map(|rule| rule.holds(tenancy, now).map(|why| (rule.name.clone(), why)))
    }

    /// Why no rule approves `tenancy` at `now` (empty when one does): the first condition each
    /// rule finds unmet, or what keeps every rule from deciding.
    pub fn refusals(&self, tenancy: &TenancySpec, now: jiff::Timestamp) -> Vec<String> {
        if self.approves(tenancy, now).is_some() {
            return Vec::new();
        }
        let mut out = Vec::new();
        if !tenancy.network_segments.is_empty() {
            out.push("it asks to join network segments: a person decides".to_owned());
        }
        if tenancy.allowed.is_some() {
            out.push("it asks for more than the safe defaults (spec.allowed): a person decides".to_owned());
        }
        if tenancy.pod_security != commons_crds::tenancy::PodSecurityLevel::default() {
            out.push("it asks for a weaker pod security level: a person decides".to_owned());
        }
        if !out.is_empty() {
            return out;
        }
        if self.rules.is_empty() {
            return vec!["the policy has no rules: every request waits for a person".to_owned()];
        }
        self.rules.iter().map(|rule| format!("rule {}: {}", rule.name, rule.unmet(tenancy, now))).collect()
    }
}

impl Rule {
    /// The first condition that does not hold (only asked of a rule that does not hold).
    fn unmet(&self, t: &TenancySpec, now: jiff::Timestamp) -> String {
        if !self.sectors.is_empty() && !self.sectors.contains(&t.organisation.sector) {
            return format!("the sector {} is not one of its sectors", t.organisation.sector.as_str());
        }
        if !self.classifications.is_empty() && !self.classifications.contains(&t.classification) {
            return format!(
                "the classification {} is not one of its classifications",
                t.classification.as_str()
            );
        }
        if let Some(days) = self.sandbox_max_days {
            let fits = t
                .expires_at
                .as_ref()
                .and_then(|e| jiff::Timestamp::from_second(e.0.as_second()).ok())
                .is_some_and(|e| {
                    now.checked_add(jiff::SignedDuration::from_hours(24 * i64::from(days)))
                        .is_ok_and(|limit| e > now && e <= limit)
                });
            if !fits {
                return format!("it is not a sandbox expiring within {days} days");
            }
        }
        if let Some(max) = &self.max_quota {
            let quota = t.quota.clone().unwrap_or_default();
            let over = |name: &str, asked: Option<&String>, ceiling: Option<&String>| -> Option<String> {
                let ceiling = ceiling?;
                match asked.and_then(|a| a.parse::<Milli>().ok()) {
                    None => Some(format!("it sets no {name} limit (the ceiling is {ceiling})")),
                    Some(a) if ceiling.parse::<Milli>().is_ok_and(|c| a > c) => Some(format!(
                        "{name} {} is over the ceiling {ceiling}",
                        asked.map_or("", String::as_str)
                    )),
                    Some(_) => None,
                }
            };
            let count = |name: &str, asked: Option<i32>, ceiling: Option<i32>| -> Option<String> {
                let ceiling = ceiling?;
                match asked {
                    None => Some(format!("it sets no {name} limit (the ceiling is {ceiling})")),
                    Some(a) if a > ceiling => Some(format!("{name} {a} is over the ceiling {ceiling}")),
                    Some(_) => None,
                }
            };
            if let Some(why) = over("cpu", quota.cpu.as_ref(), max.cpu.as_ref())
                .or_else(|| over("memory", quota.memory.as_ref(), max.memory.as_ref()))
                .or_else(|| over("storage", quota.storage.as_ref(), max.storage.as_ref()))
                .or_else(|| count("pods", quota.pods, max.pods))
                .or_else(|| count("loadBalancers", quota.load_balancers, max.load_balancers))
            {
                return why;
            }
        }
        "a condition does not hold".to_owned()
    }

    /// Why every condition holds, or `None`.
    fn holds(&self, t: &TenancySpec, now: jiff::Timestamp) -> Option<String> {
        let mut why = Vec::new();
        if !self.sectors.is_empty() {
            let sector = t.organisation.sector;
            self.sectors.contains(&sector).then_some(())?;
            why.push(format!("sector {}", sector.as_str()));
        }
        if !self.classifications.is_empty() {
            self.classifications.contains(&t.classification).then_some(())?;
            why.push(format!("classification {}", t.classification.as_str()));
        }
        if let Some(days) = self.sandbox_max_days {
            let expires = jiff::Timestamp::from_second(t.expires_at.as_ref()?.0.as_second()).ok()?;
            let limit = now.checked_add(jiff::SignedDuration::from_hours(24 * i64::from(days))).ok()?;
            (expires > now && expires <= limit).then_some(())?;
            why.push(format!("a sandbox expiring {expires} (within {days} days)"));
        }
        if let Some(max) = &self.max_quota {
            let quota = t.quota.clone().unwrap_or_default();
            let within = |asked: Option<&String>, ceiling: Option<&String>| match ceiling {
                None => Some(()),
                Some(c) => {
                    let asked = asked?.parse::<Milli>().ok()?;
                    (asked <= c.parse::<Milli>().ok()?).then_some(())
                }
            };
            within(quota.cpu.as_ref(), max.cpu.as_ref())?;
            within(quota.memory.as_ref(), max.memory.as_ref())?;
            within(quota.storage.as_ref(), max.storage.as_ref())?;
            let count = |asked: Option<i32>, ceiling: Option<i32>| match ceiling {
                None => Some(()),
                Some(c) => (asked? <= c).then_some(()),
            };
            count(quota.pods, max.pods)?;
            count(quota.load_balancers, max.load_balancers)?;
            why.push("quota within the rule's ceilings".to_owned());
        }
        Some(if why.is_empty() { "the rule has no conditions".to_owned() } else { why.join(", ") })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"
rules:
  - name: council-sandbox
    sectors: [local-government]
    classifications: [official]
    sandboxMaxDays: 90
    maxQuota: {cpu: "4", memory: 8Gi, loadBalancers: 0}
"#;

    fn spec(
        sector: &str,
        classification: &str,
        expires_days: Option<i64>,
        cpu: &str,
        lbs: Option<i32>,
    ) -> TenancySpec {
        let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let expires = expires_days.map(|d| (now + jiff::SignedDuration::from_hours(24 * d)).to_string());
        serde_json::from_value(serde_json::json!({
            "organisation": {"id": "o", "displayName": "O", "sector": sector, "costCentre": "C", "contactEmail": "a@b.example"},
            "classification": classification,
            "owners": [{"kind": "User", "name": "a@b.example"}],
            "namespaces": [{"name": "web"}],
            "quota": {"cpu": cpu, "memory": "4Gi", "loadBalancers": lbs},
            "expiresAt": expires,
        }))
        .unwrap()
    }

    #[test]
    fn a_request_no_rule_approves_is_told_which_condition_each_rule_finds_unmet() {
        let policy = Policy::parse(POLICY).unwrap();
        let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let table = [
            (spec("local-government", "official", Some(30), "2", Some(0)), None),
            (
                spec("health", "official", Some(30), "2", Some(0)),
                Some("the sector health is not one of its sectors"),
            ),
            (
                spec("local-government", "official-sensitive", Some(30), "2", Some(0)),
                Some("the classification official-sensitive is not one of its classifications"),
            ),
            (
                spec("local-government", "official", None, "2", Some(0)),
                Some("it is not a sandbox expiring within 90 days"),
            ),
            (
                spec("local-government", "official", Some(30), "16", Some(0)),
                Some("cpu 16 is over the ceiling 4"),
            ),
            (
                spec("local-government", "official", Some(30), "2", None),
                Some("it sets no loadBalancers limit (the ceiling is 0)"),
            ),
        ];
        for (t, want) in table {
            let got = policy.refusals(&t, now);
            match want {
                None => assert!(got.is_empty(), "{got:?}"),
                Some(w) => assert_eq!(got, [format!("rule council-sandbox: {w}")]),
            }
        }
        assert_eq!(
            Policy::default().refusals(&spec("health", "official", None, "2", None), now),
            ["the policy has no rules: every request waits for a person"]
        );
    }

    #[test]
    fn a_request_is_approved_only_when_every_condition_of_a_rule_holds() {
        let policy = Policy::parse(POLICY).unwrap();
        let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let table: Vec<(&str, TenancySpec, bool)> = vec![
            ("all hold", spec("local-government", "official", Some(30), "2", Some(0)), true),
            (
                "load balancers unset count as within? no: a ceiling needs the ask",
                spec("local-government", "official", Some(30), "2", None),
                false,
            ),
            ("health", spec("health", "official", Some(30), "2", Some(0)), false),
            (
                "official-sensitive",
                spec("local-government", "official-sensitive", Some(30), "2", Some(0)),
                false,
            ),
            ("not a sandbox", spec("local-government", "official", None, "2", Some(0)), false),
            ("expires too late", spec("local-government", "official", Some(91), "2", Some(0)), false),
            ("already expired", spec("local-government", "official", Some(-1), "2", Some(0)), false),
            ("too much cpu", spec("local-government", "official", Some(30), "4001m", Some(0)), false),
            ("exactly the ceiling", spec("local-government", "official", Some(30), "4", Some(0)), true),
        ];
        for (name, t, approved) in table {
            assert_eq!(policy.approves(&t, now).is_some(), approved, "{name}");
        }
        let (rule, why) =
            policy.approves(&spec("local-government", "official", Some(30), "2", Some(0)), now).unwrap();
        assert_eq!(rule, "council-sandbox");
        assert!(why.contains("sector local-government") && why.contains("within 90 days"), "{why}");
    }

    #[test]
    fn segments_extra_rights_or_weaker_pod_security_always_need_a_person() {
        let policy = Policy::parse(POLICY).unwrap();
        let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let base = spec("local-government", "official", Some(30), "2", Some(0));
        assert!(policy.approves(&base, now).is_some());
        let mut segments = base.clone();
        segments.network_segments = vec!["psn".into()];
        let mut allowed = base.clone();
        allowed.allowed = Some(Default::default());
        let mut baseline = base.clone();
        baseline.pod_security = commons_crds::tenancy::PodSecurityLevel::Baseline;
        for (name, t) in [("segments", segments), ("allowed", allowed), ("baseline", baseline)] {
            assert!(policy.approves(&t, now).is_none(), "{name}");
        }
    }

    #[test]
    fn no_policy_approves_nothing_and_bad_files_name_the_rule() {
        let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        assert!(
            Policy::default()
                .approves(&spec("local-government", "official", Some(1), "1", Some(0)), now)
                .is_none()
        );
        let e = Policy::parse("rules:\n  - name: a\n    maxQuota: {cpu: lots}\n").unwrap_err().to_string();
        assert!(e.contains("rule a") && e.contains("maxQuota.cpu"), "{e}");
        let e = Policy::parse("rules:\n  - name: a\n  - name: a\n").unwrap_err().to_string();
        assert!(e.contains("name of its own"), "{e}");
        let e = Policy::parse("rules:\n  - name: a\n    sector: [health]\n").unwrap_err().to_string();
        assert!(e.contains("--request-policy"), "{e}");
    }
}
