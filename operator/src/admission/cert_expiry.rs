//! When a certificate stops being valid: its `notAfter`, read from the DER it is served as, so
//! the webhook can publish it as a metric and an alert can fire before a chart-made certificate
//! (valid `webhook.certificate.validityDays`) runs out. Only the few DER elements in front of the
//! validity are walked (RFC 5280: Certificate → TBSCertificate → [version], serialNumber,
//! signature, issuer, validity); anything malformed is `None`.

/// The certificate's `notAfter` in seconds since the Unix epoch.
pub fn not_after(der: &[u8]) -> Option<i64> {
    let (certificate, _) = element(der, 0x30)?;
    let (mut tbs, _) = element(certificate, 0x30)?;
    // [0] EXPLICIT version, when present.
    if tbs.first() == Some(&0xA0) {
        tbs = element(tbs, 0xA0)?.1;
    }
    let tbs = element(tbs, 0x02)?.1; // serialNumber
    let tbs = element(tbs, 0x30)?.1; // signature
    let tbs = element(tbs, 0x30)?.1; // issuer
    let (validity, _) = element(tbs, 0x30)?;
    let rest = skip_time(validity)?; // notBefore
    let tag = *rest.first()?;
    let (time, _) = element(rest, tag)?;
    let text = std::str::from_utf8(time).ok()?;
    let full = match tag {
        // UTCTime YYMMDDHHMMSSZ: years 1950 to 2049 (RFC 5280 4.1.2.5.1).
        0x17 if text.len() == 13 => {
            let yy: i32 = text.get(..2)?.parse().ok()?;
            format!("{}{}", if yy >= 50 { 19 } else { 20 }, text)
        }
        // GeneralizedTime YYYYMMDDHHMMSSZ.
        0x18 if text.len() == 15 => text.to_owned(),
        _ => return None,
    };
    let at = jiff::civil::DateTime::strptime("%Y%m%d%H%M%SZ", &full).ok()?;
    Some(at.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp().as_second())
}

/// The content of the element at the start of `der` if its tag is `tag`, and what follows it.
fn element(der: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    if *der.first()? != tag {
        return None;
    }
    let first = *der.get(1)?;
    let (length, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let octets = usize::from(first & 0x7F);
        if octets == 0 || octets > 4 {
            return None;
        }
        let mut length = 0usize;
        for b in der.get(2..2 + octets)? {
            length = (length << 8) | usize::from(*b);
        }
        (length, 2 + octets)
    };
    let end = header.checked_add(length)?;
    Some((der.get(header..end)?, der.get(end..)?))
}

/// What follows the time (UTCTime or GeneralizedTime) at the start of `der`.
fn skip_time(der: &[u8]) -> Option<&[u8]> {
    let tag = *der.first()?;
    matches!(tag, 0x17 | 0x18).then_some(())?;
    Some(element(der, tag)?.1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    // Made with `openssl req -x509 -newkey ec ... -days 3650` (UTCTime) and `-days 36500`
    // (GeneralizedTime, past 2049); `openssl x509 -noout -enddate` printed each notAfter.
    const UTC_TIME: &str = "-----BEGIN CERTIFICATE-----
MIIBhDCCASmgAwIBAgIUIhe/GwbgH/7Gdn+5BK1s0GTVMDgwCgYIKoZIzj0EAwIw
FzEVMBMGA1UEAwwMY29tbW9ucy10ZXN0MB4XDTI2MTIwMzIzMjMxNloXDTM2MTEz
MDIzMjMxNlowFzEVMBMGA1UEAwwMY29tbW9ucy10ZXN0MFkwEwYHKoZIzj0CAQYI
KoZIzj0DAQcDQgAE76UbLLt8XrCsNZliXD3o/6xeTj2J2pkQGo7u9z14dvgY5H6M
aQRKFaa3+fXE+F71oEyIRN3J7YrlN0guklX80qNTMFEwHQYDVR0OBBYEFMimCqlv
YpvQ9BccYM2sL/Y4FXMFMB8GA1UdIwQYMBaAFMimCqlvYpvQ9BccYM2sL/Y4FXMF
MA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIhAKEQVOy2mUBUNpJE
/BgLPq8i5uc9SbJ34IcNOc8zbPWgAiEA8dOOGTCSwEzkILkuXaI/Ndf6aE8UyRbV
QxPqTsKFEyE=
-----END CERTIFICATE-----";
    const GENERALIZED_TIME: &str = "-----BEGIN CERTIFICATE-----
MIIBiTCCAS+gAwIBAgIUQJwmiFg7Ya5319XTU/KMTBErNV4wCgYIKoZIzj0EAwIw
GTEXMBUGA1UEAwwOY29tbW9ucy10ZXN0LTIwIBcNMjYxMjAzMjMyMzE2WhgPMjEy
NjExMDkyMzIzMTZaMBkxFzAVBgNVBAMMDmNvbW1vbnMtdGVzdC0yMFkwEwYHKoZI
zj0CAQYIKoZIzj0DAQcDQgAErXgWcEkn0eOqrxPLvIOPs+9enOohE2cSX1hi8wa9
FflDVENjmVK9V2GPOAaiQrlt/TEWjvKw4fvjl9mlEJbJXKNTMFEwHQYDVR0OBBYE
FEU9JF1kmaMF1cV8TrzM3Oxsy/PEMB8GA1UdIwQYMBaAFEU9JF1kmaMF1cV8TrzM
3Oxsy/PEMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIgD3oc82W7
DnGpbC+bW6m6RekVLLOUuILoca9OK/L7lP0CIQDK/8Cc2yPk/BZWn5ub/3a0f+U+
MsSTZKWrkSOKEeqJwg==
-----END CERTIFICATE-----";

    fn der(pem: &str) -> Vec<u8> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap().to_vec()
    }

    fn at(s: &str) -> i64 {
        s.parse::<jiff::Timestamp>().unwrap().as_second()
    }

    #[test]
    fn not_after_is_read_from_either_kind_of_time() {
        assert_eq!(not_after(&der(UTC_TIME)), Some(at("2036-11-30T23:23:16Z")));
        assert_eq!(not_after(&der(GENERALIZED_TIME)), Some(at("2126-11-09T23:23:16Z")));
    }

    #[test]
    fn anything_malformed_is_none() {
        let good = der(UTC_TIME);
        for bad in [&[][..], &good[..10], &good[1..], &[0x30, 0x84, 0xFF, 0xFF, 0xFF, 0xFF][..]] {
            assert_eq!(not_after(bad), None, "{bad:?}");
        }
    }
}
