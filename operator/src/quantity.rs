//! Exact arithmetic on Kubernetes resource quantities.
//!
//! A quantity is held as an integer number of milli-units (`1` = 1000, `250m` = 250, `1Ki` =
//! 1_024_000), which is exact for every quantity ResourceQuota accounting uses. Sub-milli values
//! (`n`, `u` suffixes) round up, as the apiserver rounds them when it accounts quota.

use std::fmt;
use std::str::FromStr;

/// A non-negative quantity in milli-units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Milli(pub i128);

/// Why a string is not a quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a Kubernetes quantity")]
pub struct QuantityError(pub String);

impl Milli {
    /// Zero.
    pub const ZERO: Milli = Milli(0);

    /// Whole units (for counts such as pods).
    pub fn units(n: i64) -> Self {
        Milli(i128::from(n) * 1000)
    }

    /// `self - other`, floored at zero.
    pub fn saturating_sub(self, other: Milli) -> Milli {
        Milli((self.0 - other.0).max(0))
    }

    /// The canonical string: whole units without a suffix when exact, otherwise `<n>m`.
    pub fn to_quantity(self) -> String {
        if self.0 % 1000 == 0 { (self.0 / 1000).to_string() } else { format!("{}m", self.0) }
    }
}

/// The canonical string for a value of `resource`: byte amounts (memory, storage) in the largest
/// binary unit that divides them exactly (`64Gi`), everything else as [`Milli::to_quantity`].
pub fn format_for(resource: &str, value: Milli) -> String {
    let bytes_like = resource.ends_with("memory") || resource.ends_with("storage");
    if bytes_like && value.0 > 0 && value.0 % 1000 == 0 {
        let bytes = value.0 / 1000;
        for (suffix, unit) in [
            ("Ei", 1i128 << 60),
            ("Pi", 1 << 50),
            ("Ti", 1 << 40),
            ("Gi", 1 << 30),
            ("Mi", 1 << 20),
            ("Ki", 1 << 10),
        ] {
            if bytes % unit == 0 {
                return format!("{}{suffix}", bytes / unit);
            }
        }
    }
    value.to_quantity()
}

impl fmt::Display for Milli {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_quantity())
    }
}

impl std::ops::Add for Milli {
    type Output = Milli;
    fn add(self, rhs: Milli) -> Milli {
        Milli(self.0 + rhs.0)
    }
}

impl std::iter::Sum for Milli {
    fn sum<I: Iterator<Item = Milli>>(iter: I) -> Milli {
        iter.fold(Milli::ZERO, |a, b| a + b)
    }
}

impl FromStr for Milli {
    type Err = QuantityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || QuantityError(s.to_owned());
        let s = s.trim();
        let split =
            s.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-')).unwrap_or(s.len());
        let (number, suffix) = s.split_at(split);
        if number.is_empty() || number.starts_with('-') {
            return Err(err());
        }
        let number = number.strip_prefix('+').unwrap_or(number);
        let (int, frac) = number.split_once('.').unwrap_or((number, ""));
        if int.is_empty() && frac.is_empty()
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
            || int.len() + frac.len() > 30
        {
            return Err(err());
        }
        // value = digits / 10^frac.len(), times the suffix's multiplier, in milli-units.
        let digits: i128 = format!("{int}{frac}").parse().map_err(|_| err())?;
        let (num, den): (i128, i128) = match suffix {
            "n" => (1, 1_000_000),
            "u" => (1, 1_000),
            "m" => (1, 1),
            "" => (1_000, 1),
            "k" => (1_000_000, 1),
            "M" => (1_000_000_000, 1),
            "G" => (1_000_000_000_000, 1),
            "T" => (1_000_000_000_000_000, 1),
            "P" => (1_000_000_000_000_000_000, 1),
            "E" => (1_000_000_000_000_000_000_000, 1),
            "Ki" => (1_024_000, 1),
            "Mi" => (1_048_576_000, 1),
            "Gi" => (1_073_741_824_000, 1),
            "Ti" => (1_099_511_627_776_000, 1),
            "Pi" => (1_125_899_906_842_624_000, 1),
            "Ei" => (1_152_921_504_606_846_976_000, 1),
            _ => return parse_exponent(digits, frac.len(), suffix).ok_or_else(err),
        };
        let den = den * 10i128.pow(u32::try_from(frac.len()).map_err(|_| err())?);
        let scaled = digits.checked_mul(num).ok_or_else(err)?;
        Ok(Milli((scaled + den - 1) / den))
    }
}

/// `1e3`, `5E-1` and the like.
fn parse_exponent(digits: i128, frac_len: usize, suffix: &str) -> Option<Milli> {
    let exp: i32 = suffix.strip_prefix(['e', 'E'])?.parse().ok()?;
    let exp = exp + 3 - i32::try_from(frac_len).ok()?;
    if exp >= 0 {
        Some(Milli(digits.checked_mul(10i128.checked_pow(u32::try_from(exp).ok()?)?)?))
    } else {
        let den = 10i128.checked_pow(u32::try_from(-exp).ok()?)?;
        Some(Milli((digits + den - 1) / den))
    }
}

/// The amounts of a ResourceQuota's `hard` or `used` (or any resource list), by resource name;
/// quantities that do not parse are left out.
pub fn amounts(
    map: Option<&std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
) -> std::collections::BTreeMap<String, Milli> {
    map.into_iter().flatten().filter_map(|(k, v)| Some((k.clone(), v.0.parse::<Milli>().ok()?))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_by_table() {
        let cases = [
            ("0", 0),
            ("1", 1000),
            ("250m", 250),
            ("1.5", 1500),
            ("0.1", 100),
            ("2k", 2_000_000),
            ("1Ki", 1_024_000),
            ("512Mi", 512 * 1_048_576_000),
            ("2Gi", 2 * 1_073_741_824_000),
            ("1G", 1_000_000_000_000),
            ("1e3", 1_000_000),
            ("5E-1", 500),
            ("1n", 1),
            ("100u", 1),
            ("1500u", 2),
            ("+3", 3000),
        ];
        for (s, want) in cases {
            assert_eq!(s.parse::<Milli>().unwrap(), Milli(want), "{s}");
        }
        for bad in ["", "-1", "abc", "1x", "1.2.3", "Mi", "."] {
            assert!(bad.parse::<Milli>().is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn formats_canonically() {
        assert_eq!(Milli(1500).to_quantity(), "1500m");
        assert_eq!(Milli(2000).to_quantity(), "2");
        assert_eq!(Milli::units(10).to_quantity(), "10");
        assert_eq!("64Gi".parse::<Milli>().unwrap().to_quantity(), "68719476736");
    }

    #[test]
    fn bytes_use_binary_units() {
        assert_eq!(format_for("requests.memory", "64Gi".parse().unwrap()), "64Gi");
        assert_eq!(format_for("requests.storage", "1536Mi".parse().unwrap()), "1536Mi");
        assert_eq!(format_for("requests.memory", Milli(1000)), "1");
        assert_eq!(format_for("pods", Milli::units(1024)), "1024");
        assert_eq!(format_for("requests.memory", Milli::ZERO), "0");
    }

    #[test]
    fn arithmetic() {
        assert_eq!(Milli(5).saturating_sub(Milli(9)), Milli::ZERO);
        assert_eq!([Milli(1), Milli(2)].into_iter().sum::<Milli>(), Milli(3));
    }
}
