//! Verifying a signed JSON Web Token (JWS compact form) against a JSON Web Key set, with the same
//! crypto provider (ring) the process's TLS and Kubernetes client use. Only asymmetric algorithms
//! are accepted (`none` and the HMAC family never are: an issuer's public key must not double as a
//! shared secret), and only when the key's type and declared algorithm agree with the token's.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::Deserialize;

/// Why a token's signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    /// Not three base64url parts, or a header that is not JSON.
    #[error("the token is not a signed JWT: {0}")]
    Malformed(&'static str),
    /// An algorithm outside the accepted asymmetric ones.
    #[error("the token is signed with {0}, which is not accepted")]
    Algorithm(String),
    /// No key of the issuer's set has the token's key id.
    #[error("no key of the issuer has the id the token names")]
    UnknownKey,
    /// The key does not suit the algorithm, or cannot be read.
    #[error("the issuer's key cannot verify {0}")]
    KeyMismatch(String),
    /// The signature does not verify.
    #[error("the signature does not verify")]
    BadSignature,
}

/// The header fields read.
#[derive(Debug, Deserialize)]
pub struct Header {
    /// The signing algorithm.
    pub alg: String,
    /// The key id.
    #[serde(default)]
    pub kid: Option<String>,
}

/// One key of a JWK set (RFC 7517), the members that verification reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Jwk {
    /// RSA, EC or OKP.
    pub kty: String,
    /// The key id.
    #[serde(default)]
    pub kid: Option<String>,
    /// The algorithm the key is for, when declared.
    #[serde(default)]
    pub alg: Option<String>,
    /// `sig` or `enc`, when declared.
    #[serde(default, rename = "use")]
    pub usage: Option<String>,
    /// RSA modulus.
    #[serde(default)]
    pub n: Option<String>,
    /// RSA exponent.
    #[serde(default)]
    pub e: Option<String>,
    /// EC or OKP curve.
    #[serde(default)]
    pub crv: Option<String>,
    /// EC x coordinate, or the OKP public key.
    #[serde(default)]
    pub x: Option<String>,
    /// EC y coordinate.
    #[serde(default)]
    pub y: Option<String>,
}

/// A JWK set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct JwkSet {
    /// The keys.
    pub keys: Vec<Jwk>,
}

impl JwkSet {
    /// The signing key a token's header names: by key id, or the only signing key when the token
    /// names none.
    pub fn find(&self, kid: Option<&str>) -> Option<&Jwk> {
        let signing = self.keys.iter().filter(|k| k.usage.as_deref() != Some("enc"));
        match kid {
            Some(kid) => signing.into_iter().find(|k| k.kid.as_deref() == Some(kid)),
            None => {
                let all: Vec<&Jwk> = signing.collect();
                if all.len() == 1 { all.first().copied() } else { None }
            }
        }
    }
}

/// A token split into its parts, its header read; nothing verified yet.
#[derive(Debug)]
pub struct Unverified<'t> {
    /// The header.
    pub header: Header,
    signed: &'t str,
    payload: &'t str,
    signature: &'t str,
}

/// Splits a compact JWS and reads its header.
pub fn parse(token: &str) -> Result<Unverified<'_>, JwsError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed("a JWT has three dot-separated parts"));
    };
    let bytes =
        URL_SAFE_NO_PAD.decode(header).map_err(|_| JwsError::Malformed("the header is not base64url"))?;
    let header: Header = serde_json::from_slice(&bytes)
        .map_err(|_| JwsError::Malformed("the header is not a JSON object with alg"))?;
    let signed = &token[..header_len(token, payload)];
    Ok(Unverified { header, signed, payload, signature })
}

fn header_len(token: &str, payload: &str) -> usize {
    // header '.' payload: everything before the second dot.
    token.find('.').map_or(0, |first| first + 1 + payload.len())
}

impl Unverified<'_> {
    /// Verifies the signature with `key` and returns the payload's bytes.
    pub fn verify(&self, key: &Jwk) -> Result<Vec<u8>, JwsError> {
        let alg = self.header.alg.as_str();
        if let Some(declared) = &key.alg
            && declared != alg
        {
            return Err(JwsError::KeyMismatch(alg.to_owned()));
        }
        let signature = URL_SAFE_NO_PAD
            .decode(self.signature)
            .map_err(|_| JwsError::Malformed("the signature is not base64url"))?;
        let message = self.signed.as_bytes();
        let outcome = match alg {
            "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512" => {
                let params: &signature::RsaParameters = match alg {
                    "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
                    "RS384" => &signature::RSA_PKCS1_2048_8192_SHA384,
                    "RS512" => &signature::RSA_PKCS1_2048_8192_SHA512,
                    "PS256" => &signature::RSA_PSS_2048_8192_SHA256,
                    "PS384" => &signature::RSA_PSS_2048_8192_SHA384,
                    _ => &signature::RSA_PSS_2048_8192_SHA512,
                };
                let (n, e) = match (key.kty.as_str(), &key.n, &key.e) {
                    ("RSA", Some(n), Some(e)) => (b64(n, alg)?, b64(e, alg)?),
                    _ => return Err(JwsError::KeyMismatch(alg.to_owned())),
                };
                RsaPublicKeyComponents { n: &n, e: &e }.verify(params, message, &signature)
            }
            "ES256" | "ES384" => {
                let (curve, params): (&str, &'static signature::EcdsaVerificationAlgorithm) =
                    if alg == "ES256" {
                        ("P-256", &signature::ECDSA_P256_SHA256_FIXED)
                    } else {
                        ("P-384", &signature::ECDSA_P384_SHA384_FIXED)
                    };
                let point = match (key.kty.as_str(), key.crv.as_deref(), &key.x, &key.y) {
                    ("EC", Some(crv), Some(x), Some(y)) if crv == curve => {
                        let mut point = vec![0x04];
                        point.extend(b64(x, alg)?);
                        point.extend(b64(y, alg)?);
                        point
                    }
                    _ => return Err(JwsError::KeyMismatch(alg.to_owned())),
                };
                UnparsedPublicKey::new(params, point).verify(message, &signature)
            }
            "EdDSA" => {
                let public = match (key.kty.as_str(), key.crv.as_deref(), &key.x) {
                    ("OKP", Some("Ed25519"), Some(x)) => b64(x, alg)?,
                    _ => return Err(JwsError::KeyMismatch(alg.to_owned())),
                };
                UnparsedPublicKey::new(&signature::ED25519, public).verify(message, &signature)
            }
            other => return Err(JwsError::Algorithm(other.to_owned())),
        };
        outcome.map_err(|_| JwsError::BadSignature)?;
        URL_SAFE_NO_PAD.decode(self.payload).map_err(|_| JwsError::Malformed("the payload is not base64url"))
    }
}

fn b64(value: &str, alg: &str) -> Result<Vec<u8>, JwsError> {
    URL_SAFE_NO_PAD.decode(value).map_err(|_| JwsError::KeyMismatch(alg.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

    // RFC 7515, appendix A.2: a JWS signed with RS256, and the RSA key that verifies it.
    const RFC_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";
    const RFC_N: &str = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";
    const RFC_E: &str = "AQAB";

    fn rfc_key() -> Jwk {
        Jwk {
            kty: "RSA".into(),
            kid: None,
            alg: None,
            usage: None,
            n: Some(RFC_N.into()),
            e: Some(RFC_E.into()),
            crv: None,
            x: None,
            y: None,
        }
    }

    fn es256_key_and_token(header: &str, payload: &str) -> (Jwk, String) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let public = pair.public_key().as_ref();
        let key = Jwk {
            kty: "EC".into(),
            kid: Some("k1".into()),
            alg: Some("ES256".into()),
            usage: Some("sig".into()),
            crv: Some("P-256".into()),
            x: Some(URL_SAFE_NO_PAD.encode(&public[1..33])),
            y: Some(URL_SAFE_NO_PAD.encode(&public[33..65])),
            n: None,
            e: None,
        };
        let signed = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload));
        let sig = pair.sign(&rng, signed.as_bytes()).unwrap();
        (key, format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref())))
    }

    #[test]
    fn the_rfc_example_verifies_and_any_changed_byte_does_not() {
        let token = parse(RFC_TOKEN).unwrap();
        assert_eq!(token.header.alg, "RS256");
        let payload = token.verify(&rfc_key()).unwrap();
        assert!(String::from_utf8(payload).unwrap().contains("\"iss\":\"joe\""));

        // The payload changed (exp moved): the signature no longer verifies.
        let mut parts: Vec<&str> = RFC_TOKEN.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(r#"{"iss":"joe","exp":9999999999}"#);
        parts[1] = &forged;
        let forged = parts.join(".");
        assert_eq!(parse(&forged).unwrap().verify(&rfc_key()), Err(JwsError::BadSignature));
    }

    #[test]
    fn es256_tokens_verify_with_their_key_only() {
        let (key, token) = es256_key_and_token(r#"{"alg":"ES256","kid":"k1"}"#, r#"{"sub":"a"}"#);
        assert_eq!(parse(&token).unwrap().verify(&key).unwrap(), br#"{"sub":"a"}"#);
        let (other, _) = es256_key_and_token(r#"{"alg":"ES256","kid":"k1"}"#, r#"{"sub":"a"}"#);
        assert_eq!(parse(&token).unwrap().verify(&other), Err(JwsError::BadSignature));
    }

    #[test]
    fn none_hmac_and_mismatched_keys_are_refused() {
        let none =
            format!("{}.{}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#), URL_SAFE_NO_PAD.encode("{}"));
        assert_eq!(parse(&none).unwrap().verify(&rfc_key()), Err(JwsError::Algorithm("none".into())));
        // HS256 "signed" with the RSA key's public modulus as the secret: the classic confusion.
        let hs =
            format!("{}.{}.AAAA", URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256"}"#), URL_SAFE_NO_PAD.encode("{}"));
        assert_eq!(parse(&hs).unwrap().verify(&rfc_key()), Err(JwsError::Algorithm("HS256".into())));
        // An ES256 token against an RSA key, and an RS256 token against a key declared for ES256.
        let (ec, es_token) = es256_key_and_token(r#"{"alg":"ES256"}"#, "{}");
        assert_eq!(parse(&es_token).unwrap().verify(&rfc_key()), Err(JwsError::KeyMismatch("ES256".into())));
        assert_eq!(parse(RFC_TOKEN).unwrap().verify(&ec), Err(JwsError::KeyMismatch("RS256".into())));
    }

    #[test]
    fn malformed_tokens_name_what_is_wrong() {
        assert!(matches!(parse("abc"), Err(JwsError::Malformed(_))));
        assert!(matches!(parse("a.b.c.d"), Err(JwsError::Malformed(_))));
        assert!(matches!(parse("!!.b.c"), Err(JwsError::Malformed(_))));
    }

    #[test]
    fn keys_are_found_by_id_or_as_the_only_signing_key() {
        let mut a = rfc_key();
        a.kid = Some("a".into());
        let mut enc = rfc_key();
        enc.kid = Some("e".into());
        enc.usage = Some("enc".into());
        let set = JwkSet { keys: vec![a.clone(), enc] };
        assert_eq!(set.find(Some("a")), Some(&a));
        assert_eq!(set.find(Some("e")), None, "an encryption key never verifies a signature");
        assert_eq!(set.find(None), Some(&a));
        assert_eq!(set.find(Some("zzz")), None);
    }
}
