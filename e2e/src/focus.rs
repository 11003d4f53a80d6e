//! A checker of FOCUS 1.3 Cost and Usage CSV, written from the specification's column definitions
//! (independently of the exporter): the columns present, their types, null rules and allowed
//! values, and the cross-column rules an export without commitments or contracts must meet.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

/// Every Mandatory column of FOCUS 1.3 Cost and Usage.
pub const MANDATORY: [&str; 23] = [
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ContractedCost",
    "EffectiveCost",
    "HostProviderName",
    "InvoiceIssuerName",
    "ListCost",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "ServiceCategory",
    "ServiceName",
    "ServiceProviderName",
];

/// Every other column FOCUS 1.3 defines for Cost and Usage.
const OTHERS: [&str; 42] = [
    "AllocatedMethodDetails",
    "AllocatedMethodId",
    "AllocatedResourceId",
    "AllocatedResourceName",
    "AllocatedTags",
    "AvailabilityZone",
    "BillingAccountType",
    "CapacityReservationId",
    "CapacityReservationStatus",
    "ChargeFrequency",
    "CommitmentDiscountCategory",
    "CommitmentDiscountId",
    "CommitmentDiscountName",
    "CommitmentDiscountQuantity",
    "CommitmentDiscountStatus",
    "CommitmentDiscountType",
    "CommitmentDiscountUnit",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractApplied",
    "ContractedUnitPrice",
    "InvoiceId",
    "ListUnitPrice",
    "PricingCategory",
    "PricingCurrency",
    "PricingCurrencyContractedUnitPrice",
    "PricingCurrencyEffectiveCost",
    "PricingCurrencyListUnitPrice",
    "RegionId",
    "RegionName",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "ServiceSubcategory",
    "SkuId",
    "SkuMeter",
    "SkuPriceDetails",
    "SkuPriceId",
    "SubAccountId",
    "SubAccountName",
    "SubAccountType",
    "Tags",
];

/// Columns that must never be null when present.
const NOT_NULL: [&str; 19] = [
    "BilledCost",
    "BillingAccountId",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ContractedCost",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "ServiceCategory",
    "ServiceName",
    "ServiceProviderName",
    "ProviderName",
    "PublisherName",
    "ChargeFrequency",
    "ServiceSubcategory",
];

const DATES: [&str; 4] = ["BillingPeriodEnd", "BillingPeriodStart", "ChargePeriodEnd", "ChargePeriodStart"];
const DECIMALS: [&str; 8] = [
    "BilledCost",
    "ConsumedQuantity",
    "ContractedCost",
    "ContractedUnitPrice",
    "EffectiveCost",
    "ListCost",
    "ListUnitPrice",
    "PricingQuantity",
];

/// ServiceCategory values and each one's ServiceSubcategory values.
fn categories() -> BTreeMap<&'static str, Vec<&'static str>> {
    let mut m: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let table: [(&str, &[&str]); 19] = [
        (
            "AI and Machine Learning",
            &[
                "AI Platforms",
                "Bots",
                "Generative AI",
                "Machine Learning",
                "Natural Language Processing",
                "Other (AI and Machine Learning)",
            ],
        ),
        (
            "Analytics",
            &[
                "Analytics Platforms",
                "Business Intelligence",
                "Data Processing",
                "Search",
                "Streaming Analytics",
                "Other (Analytics)",
            ],
        ),
        ("Business Applications", &["Productivity and Collaboration", "Other (Business Applications)"]),
        (
            "Compute",
            &[
                "Containers",
                "End User Computing",
                "Quantum Compute",
                "Serverless Compute",
                "Virtual Machines",
                "Other (Compute)",
            ],
        ),
        (
            "Databases",
            &[
                "Caching",
                "Data Warehouses",
                "Ledger Databases",
                "NoSQL Databases",
                "Relational Databases",
                "Time Series Databases",
                "Other (Databases)",
            ],
        ),
        (
            "Developer Tools",
            &[
                "Developer Platforms",
                "Continuous Integration and Deployment",
                "Development Environments",
                "Source Code Management",
                "Quality Assurance",
                "Other (Developer Tools)",
            ],
        ),
        ("Identity", &["Identity and Access Management", "Other (Identity)"]),
        ("Integration", &["API Management", "Messaging", "Workflow Orchestration", "Other (Integration)"]),
        ("Internet of Things", &["IoT Analytics", "IoT Platforms", "Other (Internet of Things)"]),
        (
            "Management and Governance",
            &[
                "Architecture",
                "Compliance",
                "Cost Management",
                "Data Governance",
                "Disaster Recovery",
                "Endpoint Management",
                "Observability",
                "Support",
                "Other (Management and Governance)",
            ],
        ),
        ("Media", &["Content Creation", "Gaming", "Media Streaming", "Mixed Reality", "Other (Media)"]),
        ("Migration", &["Data Migration", "Resource Migration", "Other (Migration)"]),
        ("Mobile", &["Other (Mobile)"]),
        ("Multicloud", &["Multicloud Integration", "Other (Multicloud)"]),
        (
            "Networking",
            &[
                "Application Networking",
                "Content Delivery",
                "Network Connectivity",
                "Network Infrastructure",
                "Network Routing",
                "Network Security",
                "Other (Networking)",
            ],
        ),
        (
            "Security",
            &[
                "Secret Management",
                "Security Posture Management",
                "Threat Detection and Response",
                "Other (Security)",
            ],
        ),
        (
            "Storage",
            &[
                "Backup Storage",
                "Block Storage",
                "File Storage",
                "Object Storage",
                "Storage Platforms",
                "Other (Storage)",
            ],
        ),
        ("Web", &["Application Platforms", "Other (Web)"]),
        ("Other", &["Other (Other)"]),
    ];
    for (c, subs) in table {
        m.insert(c, subs.to_vec());
    }
    m
}

/// Parses RFC 4180 CSV (quoted fields, doubled quotes, commas and line breaks inside quotes).
pub fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let (mut row, mut field, mut quoted, mut in_quotes) = (Vec::new(), String::new(), false, false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (in_quotes, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => in_quotes = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => {
                in_quotes = true;
                quoted = true;
            }
            (false, ',') => {
                row.push(std::mem::take(&mut field));
                quoted = false;
            }
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
                quoted = false;
            }
            (false, '\r') => {}
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || quoted || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

fn is_decimal(s: &str) -> bool {
    let (mantissa, exponent) = match s.split_once('E') {
        Some((m, e)) => (m, Some(e)),
        None => (s, None),
    };
    let m = mantissa.strip_prefix('-').unwrap_or(mantissa);
    let (int, frac) = m.split_once('.').map_or((m, None), |(i, f)| (i, Some(f)));
    let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    digits(int)
        && frac.is_none_or(digits)
        && exponent.is_none_or(|e| digits(e.strip_prefix('-').unwrap_or(e)))
}

/// Every way `csv` breaks FOCUS 1.3, one message each naming the row and column; empty when it
/// conforms.
pub fn check(csv: &str) -> Vec<String> {
    let rows = parse_csv(csv);
    let mut problems = Vec::new();
    let Some(header) = rows.first() else {
        return vec!["no header row".into()];
    };
    for m in MANDATORY {
        if !header.iter().any(|h| h == m) {
            problems.push(format!("mandatory column {m} is missing"));
        }
    }
    for h in header {
        if !MANDATORY.contains(&h.as_str()) && !OTHERS.contains(&h.as_str()) && !h.starts_with("x_") {
            problems.push(format!("column {h} is not a FOCUS 1.3 column and has no x_ prefix"));
        }
    }
    let categories = categories();
    for (n, row) in rows.iter().enumerate().skip(1) {
        if row.len() != header.len() {
            problems.push(format!("row {n}: {} fields for {} columns", row.len(), header.len()));
            continue;
        }
        let get =
            |c: &str| header.iter().position(|h| h == c).map(|i| row[i].as_str()).filter(|v| !v.is_empty());
        let mut bad = |c: &str, why: String| problems.push(format!("row {n}, {c}: {why}"));
        for c in NOT_NULL {
            if header.iter().any(|h| h == c) && get(c).is_none() {
                bad(c, "must not be null".into());
            }
        }
        for c in DATES {
            if let Some(v) = get(c).filter(|v| !is_date(v)) {
                bad(c, format!("{v:?} is not YYYY-MM-DDTHH:mm:ssZ"));
            }
        }
        for c in DECIMALS {
            if let Some(v) = get(c).filter(|v| !is_decimal(v)) {
                bad(c, format!("{v:?} is not a FOCUS decimal"));
            }
        }
        let allowed = |c: &str, values: &[&str], bad: &mut dyn FnMut(&str, String)| {
            if let Some(v) = get(c).filter(|v| !values.contains(v)) {
                bad(c, format!("{v:?} is not one of {values:?}"));
            }
        };
        allowed("ChargeCategory", &["Usage", "Purchase", "Tax", "Credit", "Adjustment"], &mut bad);
        allowed("ChargeClass", &["Correction"], &mut bad);
        allowed("ChargeFrequency", &["One-Time", "Recurring", "Usage-Based"], &mut bad);
        allowed("PricingCategory", &["Standard", "Dynamic", "Committed", "Other"], &mut bad);
        if let Some(cat) = get("ServiceCategory") {
            match categories.get(cat) {
                None => bad("ServiceCategory", format!("{cat:?} is not a FOCUS service category")),
                Some(subs) => {
                    if let Some(sub) = get("ServiceSubcategory").filter(|s| !subs.contains(s)) {
                        bad("ServiceSubcategory", format!("{sub:?} is not a subcategory of {cat:?}"));
                    }
                }
            }
        }
        if let Some(c) =
            get("BillingCurrency").filter(|c| c.len() != 3 || !c.bytes().all(|b| b.is_ascii_uppercase()))
        {
            bad("BillingCurrency", format!("{c:?} is not an ISO 4217 code"));
        }
        if get("ChargeCategory") == Some("Purchase") && get("ChargeFrequency") == Some("Usage-Based") {
            bad("ChargeFrequency", "must not be Usage-Based for a Purchase".into());
        }
        for (a, b) in [
            ("ConsumedQuantity", "ConsumedUnit"),
            ("PricingQuantity", "PricingUnit"),
            ("SubAccountId", "SubAccountName"),
            ("ResourceId", "ResourceType"),
        ] {
            if header.iter().any(|h| h == b) && get(a).is_some() != get(b).is_some() {
                bad(b, format!("must be null exactly when {a} is"));
            }
        }
        if get("SkuPriceId").is_none() {
            for c in [
                "PricingQuantity",
                "ListUnitPrice",
                "ContractedUnitPrice",
                "PricingCategory",
                "ConsumedQuantity",
            ] {
                if get(c).is_some() {
                    bad(c, "must be null when SkuPriceId is null".into());
                }
            }
        }
        if matches!(get("ChargeCategory"), Some("Usage" | "Purchase")) && get("ChargeClass").is_none() {
            for c in
                ["SkuPriceId", "PricingQuantity", "ListUnitPrice", "ContractedUnitPrice", "PricingCategory"]
            {
                if header.iter().any(|h| h == c) && get(c).is_none() {
                    bad(c, "must not be null for Usage that is not a correction".into());
                }
            }
        }
        let dec = |c: &str| get(c).and_then(|v| v.parse::<Decimal>().ok());
        for c in ["ListUnitPrice", "ContractedUnitPrice"] {
            if dec(c).is_some_and(|p| p.is_sign_negative() && !p.is_zero()) {
                bad(c, "must not be negative".into());
            }
        }
        // Costs are each rounded once to the currency's minor unit: price × quantity agrees to
        // within half of it.
        for (cost, price) in [("ListCost", "ListUnitPrice"), ("ContractedCost", "ContractedUnitPrice")] {
            if let (Some(c), Some(p), Some(q)) = (dec(cost), dec(price), dec("PricingQuantity"))
                && (c - p * q).abs() > Decimal::new(5, 3)
            {
                bad(cost, format!("{c} is not {p} × {q}"));
            }
        }
        for (a, b) in [("ChargePeriodStart", "ChargePeriodEnd"), ("BillingPeriodStart", "BillingPeriodEnd")] {
            if let (Some(s), Some(e)) = (get(a), get(b))
                && s >= e
            {
                bad(b, format!("{e} is not after {a} {s}"));
            }
        }
        if let Some(tags) = get("Tags") {
            match serde_json::from_str::<serde_json::Value>(tags) {
                Ok(serde_json::Value::Object(m)) => {
                    if m.values().any(|v| v.is_object() || v.is_array()) {
                        bad("Tags", "values must not be objects or arrays".into());
                    }
                }
                _ => bad("Tags", format!("{tags:?} is not a JSON object")),
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checker_finds_what_breaks_the_rules() {
        assert!(
            is_date("2026-11-01T00:00:00Z")
                && !is_date("2026-11-01T00:00:00+00:00")
                && !is_date("2026-11-01")
        );
        assert!(
            is_decimal("-0.05")
                && is_decimal("35.2E-7")
                && !is_decimal("35.2E+7")
                && !is_decimal("+3")
                && !is_decimal("3,432")
        );
        let header = MANDATORY.join(",");
        let bad = format!("{header}\n{}\n", vec![""; MANDATORY.len()].join(","));
        let found = check(&bad);
        assert!(found.iter().any(|p| p.contains("BilledCost: must not be null")), "{found:?}");
        assert!(
            check("BilledCost\n1\n").iter().any(|p| p.contains("mandatory column ServiceName is missing"))
        );
        assert_eq!(
            parse_csv("a,\"b,\"\"c\"\"\"\n1,2\n"),
            vec![vec!["a".to_owned(), "b,\"c\"".to_owned()], vec!["1".to_owned(), "2".to_owned()]]
        );
    }
}
