//! How figures read on the pages, in the GOV.UK style: money as `£1,234.56`, dates as
//! `3 December 2026`, states as coloured tags. Amounts stay exact decimal strings from the API;
//! they are only grouped, never recomputed in floating point.

use rust_decimal::Decimal;

/// `£1,234.56` (or `1,234.56 EUR` for another currency); the text as given if it is not a number.
pub fn money(amount: &str, currency: &str) -> String {
    let Ok(value) = amount.parse::<Decimal>() else { return amount.to_owned() };
    let rounded = value.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointNearestEven);
    let text = format!("{rounded:.2}");
    let (sign, digits) = text.strip_prefix('-').map_or(("", text.as_str()), |d| ("-", d));
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "00"));
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match currency {
        "GBP" => format!("{sign}£{grouped}.{fraction}"),
        other => format!("{sign}{grouped}.{fraction} {other}"),
    }
}

/// `3 December 2026` from an RFC 3339 timestamp or `YYYY-MM-DD`; the text as given otherwise.
pub fn date(text: &str) -> String {
    let day = text.get(..10).unwrap_or(text);
    match day.parse::<jiff::civil::Date>() {
        Ok(d) => format!("{} {} {}", d.day(), MONTHS[usize::from(d.month().unsigned_abs()) - 1], d.year()),
        Err(_) => text.to_owned(),
    }
}

/// `10:51am UTC on 3 December 2026` (the GOV.UK style for times: 12-hour, `midday`, `midnight`)
/// from an RFC 3339 timestamp; the text as given otherwise.
pub fn instant(text: &str) -> String {
    let Ok(at) = text.parse::<jiff::Timestamp>() else { return text.to_owned() };
    let at = at.to_zoned(jiff::tz::TimeZone::UTC);
    let (hour, minute) = (at.hour(), at.minute());
    let time = match (hour, minute) {
        (0, 0) => "midnight".to_owned(),
        (12, 0) => "midday".to_owned(),
        _ => format!(
            "{}:{minute:02}{}",
            if hour % 12 == 0 { 12 } else { hour % 12 },
            if hour < 12 { "am" } else { "pm" }
        ),
    };
    format!("{time} UTC on {}", date(&at.date().to_string()))
}

/// `November 2026` from `2026-11`.
pub fn month(period: &str) -> String {
    date(&format!("{period}-01")).split_once(' ').map_or(period.to_owned(), |(_, rest)| rest.to_owned())
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// The GOV.UK tag colour for a state the API answers.
pub fn tag_class(state: &str) -> &'static str {
    match state {
        "Ready" | "Applied" | "Approved" => "govuk-tag--green",
        "Pending" => "govuk-tag--blue",
        "Suspended" | "Withdrawn" => "govuk-tag--grey",
        "Denied" | "NameTaken" | "TenancyDeleted" | "TenancyMissing" | "NotTheOrganisations" | "Refused" => {
            "govuk-tag--red"
        }
        _ => "govuk-tag--yellow",
    }
}

/// A state as people read it.
pub fn state_text(state: &str) -> &'static str {
    match state {
        "Ready" => "Ready",
        "Pending" => "Pending",
        "Suspended" => "Suspended",
        "Approved" => "Approved",
        "Applied" => "Applied",
        "Denied" => "Denied",
        "NameTaken" => "Name already taken",
        "TenancyDeleted" => "Tenancy deleted",
        "TenancyMissing" => "Tenancy missing",
        "NotTheOrganisations" => "Not your organisation's",
        "Refused" => "Refused",
        _ => "Unknown",
    }
}

/// A charge of an estimate as people read it.
pub fn charge(name: &str) -> String {
    match name {
        "cpu" => "CPU".into(),
        "memory" => "Memory".into(),
        "storage" => "Storage".into(),
        "load-balancer" | "load-balancers" => "Load balancers".into(),
        "platform-overhead" | "overhead" => "Platform overhead".into(),
        "vat" => "VAT".into(),
        other => other.replace('-', " "),
    }
}

/// A resource name of a quota as people read it.
pub fn resource(name: &str) -> String {
    match name {
        "cpu" | "requests.cpu" => "CPU".into(),
        "memory" | "requests.memory" => "Memory".into(),
        "limits.cpu" => "CPU limit".into(),
        "limits.memory" => "Memory limit".into(),
        "pods" => "Pods".into(),
        "storage" | "requests.storage" => "Storage".into(),
        "services.loadbalancers" | "loadBalancers" => "Load balancers".into(),
        "persistentvolumeclaims" => "Volume claims".into(),
        other => other.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_as_govuk_writes_them() {
        let cases = [
            ("1234.5", "GBP", "£1,234.50"),
            ("0", "GBP", "£0.00"),
            ("1234567.005", "GBP", "£1,234,567.00"),
            ("1234567.015", "GBP", "£1,234,567.02"),
            ("-12.3", "GBP", "-£12.30"),
            ("999", "EUR", "999.00 EUR"),
            ("n/a", "GBP", "n/a"),
        ];
        for (amount, currency, want) in cases {
            assert_eq!(money(amount, currency), want, "{amount}");
        }
        assert_eq!(date("2026-12-03T07:40:09Z"), "3 December 2026");
        assert_eq!(date("2026-01-31"), "31 January 2026");
        assert_eq!(date("soon"), "soon");
        assert_eq!(month("2026-11"), "November 2026");
        assert_eq!(instant("2026-12-03T10:51:03.123Z"), "10:51am UTC on 3 December 2026");
        assert_eq!(instant("2026-12-03T17:05:00+01:00"), "4:05pm UTC on 3 December 2026");
        assert_eq!(instant("2026-12-03T00:00:00Z"), "midnight UTC on 3 December 2026");
        assert_eq!(instant("2026-12-03T12:00:00Z"), "midday UTC on 3 December 2026");
        assert_eq!(instant("2026-12-03T00:30:00Z"), "12:30am UTC on 3 December 2026");
        assert_eq!(instant("later"), "later");
    }

    #[test]
    fn every_state_has_a_tag() {
        assert_eq!(tag_class("Ready"), "govuk-tag--green");
        assert_eq!(tag_class("Denied"), "govuk-tag--red");
        assert_eq!(state_text("NameTaken"), "Name already taken");
    }
}
