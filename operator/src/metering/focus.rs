//! FOCUS export (pure): a period's charge lines as FinOps FOCUS 1.3 Cost and Usage rows, one row
//! per charge line, so the export's total is the report's total to the penny. docs/metering.md,
//! "FOCUS export", says how each column is filled and why.

use std::collections::BTreeMap;
use std::io::{self, Write};

use jiff::Timestamp;
use rust_decimal::Decimal;

use super::charges::{Charge, ChargeLine};
use super::periods::Month;
use super::rating::{Card, Resource};

/// The FOCUS version the export conforms to.
pub const FOCUS_VERSION: &str = "1.3";

/// Who provides, hosts and invoices everything Commons charges for.
pub const PROVIDER: &str = "Commons";

/// The billing account of usage recorded before its tenancy had an organisation id (BillingAccountId
/// must not be null).
pub const UNATTRIBUTED: &str = "unattributed";

/// The billing account of what is charged to no tenancy: the platform's unallocated capacity.
pub const PLATFORM: &str = "commons-platform";

/// The columns, in the order written: every Mandatory FOCUS 1.3 column, and the Conditional and
/// Recommended ones whose condition Commons meets (sub-accounts, resources, SKUs and unit prices,
/// usage measurement, tags).
pub const COLUMNS: [&str; 39] = [
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "ContractedUnitPrice",
    "EffectiveCost",
    "HostProviderName",
    "InvoiceIssuerName",
    "ListCost",
    "ListUnitPrice",
    "PricingCategory",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "ServiceCategory",
    "ServiceName",
    "ServiceProviderName",
    "ServiceSubcategory",
    "SkuId",
    "SkuPriceId",
    "SubAccountId",
    "SubAccountName",
    "SubAccountType",
    "Tags",
];

/// The FOCUS service of each charge: name, category and subcategory (one category per name).
fn service(charge: Charge) -> (&'static str, &'static str, &'static str) {
    match charge {
        Charge::Cpu | Charge::Memory | Charge::UnallocatedCpu | Charge::UnallocatedMemory => {
            ("Commons Compute", "Compute", "Containers")
        }
        Charge::Storage => ("Commons Storage", "Storage", "Block Storage"),
        Charge::LoadBalancer => ("Commons Load Balancing", "Networking", "Application Networking"),
        Charge::PlatformOverhead => {
            ("Commons Platform", "Management and Governance", "Other (Management and Governance)")
        }
        Charge::SharedService | Charge::SharedServiceCredit => {
            ("Commons Shared Services", "Other", "Other (Other)")
        }
        Charge::Vat => ("Commons VAT", "Other", "Other (Other)"),
    }
}

fn resource(charge: Charge) -> Option<Resource> {
    match charge {
        Charge::Cpu | Charge::UnallocatedCpu => Some(Resource::Cpu),
        Charge::Memory | Charge::UnallocatedMemory => Some(Resource::Memory),
        Charge::Storage => Some(Resource::Storage),
        Charge::LoadBalancer => Some(Resource::LoadBalancer),
        Charge::PlatformOverhead | Charge::SharedService | Charge::SharedServiceCredit | Charge::Vat => None,
    }
}

/// The unit of a charge's quantity, in FOCUS UnitFormat.
fn unit(charge: Charge) -> Option<&'static str> {
    match charge {
        Charge::Cpu | Charge::UnallocatedCpu => Some("Core-Hours"),
        Charge::Memory | Charge::Storage | Charge::UnallocatedMemory => Some("GiB-Hours"),
        Charge::LoadBalancer => Some("Hours"),
        Charge::PlatformOverhead | Charge::SharedService | Charge::SharedServiceCredit | Charge::Vat => None,
    }
}

/// A CSV field: null is an empty field; text with a comma, quote or line break is quoted.
fn field(value: Option<String>) -> String {
    match value {
        None => String::new(),
        Some(s) if s.contains([',', '"', '\n', '\r']) => format!("\"{}\"", s.replace('"', "\"\"")),
        Some(s) => s,
    }
}

fn at(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Writes the header and one row per line of billing period `billing` (whose corrections are for
/// the months they name), priced with `cards`, in `currency`.
pub fn write(
    out: &mut impl Write,
    billing: &Month,
    lines: &[ChargeLine],
    cards: &[Card],
    currency: &str,
) -> io::Result<()> {
    write_header(out)?;
    write_rows(out, billing, lines, cards, currency)
}

/// Writes the header row alone.
pub fn write_header(out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "{}", COLUMNS.join(","))
}

/// Writes the rows of `lines` alone (a slice of a period's lines, for writing a period a part at a
/// time: the rows are the same as `write` gives).
pub fn write_rows(
    out: &mut impl Write,
    billing: &Month,
    lines: &[ChargeLine],
    cards: &[Card],
    currency: &str,
) -> io::Result<()> {
    let by_name: BTreeMap<&str, &Card> = cards.iter().map(|c| (c.name.as_str(), c)).collect();
    for l in lines {
        let (service_name, category, subcategory) = service(l.charge);
        let card = by_name.get(l.rate_card.as_str());
        let unit_price = resource(l.charge).zip(card).map(|(r, c)| c.price(r));
        let charge_period = match l.corrects.as_str() {
            "" => billing.clone(),
            corrected => Month::parse(corrected).unwrap_or_else(|_| billing.clone()),
        };
        let g = &l.grain;
        let resource_id = match g.hosted_service.as_str() {
            "" => format!("{}/{}", g.tenancy, g.namespace),
            svc => format!("{}/{}/{}", g.tenancy, g.namespace, svc),
        };
        let what = match l.charge {
            Charge::Cpu => "CPU requested",
            Charge::Memory => "memory requested",
            Charge::Storage => "storage claimed",
            Charge::LoadBalancer => "load balancers held",
            Charge::PlatformOverhead => "platform overhead on the charges",
            Charge::UnallocatedCpu => "node CPU no tenancy reserved",
            Charge::UnallocatedMemory => "node memory no tenancy reserved",
            Charge::SharedService => "share of a shared service's cost",
            Charge::SharedServiceCredit => "credit for the shares of a shared service paid by its consumers",
            Charge::Vat => "VAT on the charges",
        };
        let mut description = if g.namespace.is_empty() {
            format!("{what} (charged to no tenancy)")
        } else {
            format!("{what} in namespace {}", g.namespace)
        };
        if l.charge == Charge::Vat {
            description.push_str(&format!(" at VAT rate {}", l.rate_card));
        }
        if !g.hosted_service.is_empty() {
            description.push_str(&format!(" by hosted service {}", g.hosted_service));
        }
        if !l.corrects.is_empty() {
            description.push_str(&format!(" (correction for {})", l.corrects));
        }
        let tags = serde_json::json!({
            "commons.dev/organisation": g.organisation,
            "commons.dev/sector": g.sector,
            "commons.dev/cost-centre": g.cost_centre,
            "commons.dev/tenancy": g.tenancy,
            "commons.dev/namespace": g.namespace,
        });
        let mut tags = tags.as_object().cloned().unwrap_or_default();
        if !g.hosted_service.is_empty() {
            tags.insert("commons.dev/hosted-service".into(), g.hosted_service.clone().into());
        }
        let usage = resource(l.charge).is_some();
        let charge_category = match l.charge {
            Charge::Vat => "Tax",
            Charge::SharedServiceCredit => "Credit",
            _ if usage => "Usage",
            _ => "Adjustment",
        };
        let platform = g.tenancy.is_empty();
        // A correction's quantity and cost need not be price × quantity (a price change alone
        // corrects the cost, not the quantity): its unit prices are left out.
        let unit_price = unit_price.filter(|_| l.corrects.is_empty());
        let cost = Some(l.amount.to_string());
        let quantity = l.quantity.filter(|_| usage).map(|q: Decimal| q.to_string());
        let sku = usage.then(|| format!("commons-{}", l.charge));
        // Capacity no tenancy reserved is a cost nobody is invoiced for: billed nothing, its cost in
        // the effective, list and contracted columns.
        let billed = if platform {
            let mut zero = Decimal::ZERO;
            zero.rescale(l.amount.scale());
            Some(zero.to_string())
        } else {
            cost.clone()
        };
        let row: [Option<String>; 39] = [
            billed,
            Some(match () {
                () if platform => PLATFORM.to_owned(),
                () if g.organisation.is_empty() => UNATTRIBUTED.to_owned(),
                () => g.organisation.clone(),
            }),
            Some(match () {
                () if platform => "Commons platform".to_owned(),
                () if g.organisation_name.is_empty() => "Unattributed".to_owned(),
                () => g.organisation_name.clone(),
            }),
            Some(currency.to_owned()),
            Some(at(billing.until)),
            Some(at(billing.from)),
            Some(charge_category.to_owned()),
            (!l.corrects.is_empty()).then(|| "Correction".to_owned()),
            Some(description),
            Some("Usage-Based".to_owned()),
            Some(at(charge_period.until)),
            Some(at(charge_period.from)),
            quantity.clone(),
            quantity.as_ref().and(unit(l.charge)).map(str::to_owned),
            cost.clone(),
            unit_price.filter(|_| usage).map(|p| p.to_string()),
            cost.clone(),
            Some(PROVIDER.to_owned()),
            Some(PROVIDER.to_owned()),
            cost,
            unit_price.filter(|_| usage).map(|p| p.to_string()),
            usage.then(|| "Standard".to_owned()),
            quantity,
            usage.then(|| unit(l.charge).unwrap_or_default().to_owned()),
            Some(PROVIDER.to_owned()),
            Some(PROVIDER.to_owned()),
            (!platform).then(|| resource_id.clone()),
            (!platform).then_some(resource_id),
            (!platform)
                .then(|| if g.hosted_service.is_empty() { "Namespace" } else { "Hosted Service" }.to_owned()),
            Some(category.to_owned()),
            Some(service_name.to_owned()),
            Some(PROVIDER.to_owned()),
            Some(subcategory.to_owned()),
            sku.clone(),
            // Stable over time (FOCUS): the price itself is in ListUnitPrice.
            sku.map(|s| format!("{s}-standard")),
            (!platform).then(|| g.tenancy.clone()),
            (!platform).then(|| g.tenancy.clone()),
            (!platform).then(|| "Tenancy".to_owned()),
            Some(serde_json::Value::Object(tags).to_string()),
        ];
        let cells: Vec<String> = row.into_iter().map(field).collect();
        writeln!(out, "{}", cells.join(","))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metering::charges::Grain;
    use rust_decimal::dec;

    fn card() -> Card {
        Card {
            name: "standard-2026".into(),
            effective_from: "2026-01-01T00:00:00Z".parse().unwrap(),
            currency: "GBP".into(),
            cpu: dec!(0.0345),
            memory: dec!(0.0046),
            storage: dec!(0.00014),
            load_balancer: dec!(0.025),
            overhead_percent: dec!(12.5),
        }
    }

    fn line(charge: Charge, amount: Decimal, corrects: &str) -> ChargeLine {
        ChargeLine {
            grain: Grain {
                tenancy: "north".into(),
                namespace: "north-revenues".into(),
                hosted_service: "payroll".into(),
                organisation: "northshire-county-council".into(),
                organisation_name: "Northshire County Council, Revenues".into(),
                sector: "local-government".into(),
                cost_centre: "NCC-IT-4410".into(),
            },
            charge,
            quantity: (charge != Charge::PlatformOverhead).then_some(dec!(100)),
            amount,
            rate_card: "standard-2026".into(),
            corrects: corrects.into(),
        }
    }

    #[test]
    fn each_charge_line_is_one_row_with_every_column() {
        let billing = Month::parse("2026-11").unwrap();
        let lines = [
            line(Charge::Cpu, dec!(3.45), ""),
            line(Charge::PlatformOverhead, dec!(0.43), ""),
            line(Charge::Cpu, dec!(-1.00), "2026-10"),
        ];
        let mut out = Vec::new();
        write(&mut out, &billing, &lines, &[card()], "GBP").unwrap();
        let text = String::from_utf8(out).unwrap();
        let rows: Vec<&str> = text.lines().collect();
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0].split(',').count(), COLUMNS.len());
        let cpu = rows[1];
        assert!(cpu.starts_with("3.45,northshire-county-council,\"Northshire County Council, Revenues\",GBP,2026-12-01T00:00:00Z,2026-11-01T00:00:00Z,Usage,,"), "{cpu}");
        assert!(
            cpu.contains(
                ",100,Core-Hours,3.45,0.0345,3.45,Commons,Commons,3.45,0.0345,Standard,100,Core-Hours,"
            ),
            "{cpu}"
        );
        assert!(cpu.contains(",commons-cpu,commons-cpu-standard,north,north,Tenancy,"), "{cpu}");
        assert!(
            cpu.contains(r#""{""commons.dev/cost-centre"":""NCC-IT-4410"""#),
            "tags are a JSON object: {cpu}"
        );
        let overhead = rows[2];
        assert!(overhead.contains(",Adjustment,,"), "{overhead}");
        assert!(
            overhead.contains(",,,0.43,,0.43,Commons,Commons,0.43,,,,,Commons,Commons,"),
            "no quantity or unit price: {overhead}"
        );
        let fix = rows[3];
        assert!(fix.contains(",Usage,Correction,"), "{fix}");
        assert!(fix.contains(",2026-11-01T00:00:00Z,2026-10-01T00:00:00Z,"), "charged for October: {fix}");
    }
}
