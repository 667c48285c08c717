//! GitHub App authentication: the app's RS256 JWT, signed with `ring`, and
//! the installation token it mints, cached until shortly before it expires.
//!
//! Signed here rather than through `jsonwebtoken`: its RustCrypto backend
//! pulls the `rsa` crate (RUSTSEC-2023-0071, a timing side channel with no
//! fixed version), and its other backend would add a second C crypto library
//! beside the `ring` that rustls already uses. GitHub Apps use RS256 only.

use anyhow::{Context as _, anyhow};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, TimeDelta, Utc};
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};

/// A GitHub App's private key (PKCS#1 `RSA PRIVATE KEY`, as GitHub issues
/// it, or PKCS#8 `PRIVATE KEY`). Never printed.
pub struct AppKey(RsaKeyPair);

impl std::fmt::Debug for AppKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppKey(redacted)")
    }
}

impl AppKey {
    pub fn from_pem(pem: &str) -> anyhow::Result<Self> {
        let (label, der) = pem_body(pem)?;
        let pair = match label.as_str() {
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der),
            "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der),
            other => return Err(anyhow!("expected an RSA private key, found a PEM {other:?}")),
        }
        .map_err(|e| anyhow!("not a usable RSA private key: {e}"))?;
        Ok(Self(pair))
    }

    /// The app's JWT: issued a minute in the past (clock drift), valid nine
    /// minutes (GitHub's limit is ten).
    pub fn jwt(&self, app_id: u64, now: DateTime<Utc>) -> anyhow::Result<String> {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = serde_json::json!({
            "iat": (now - TimeDelta::seconds(60)).timestamp(),
            "exp": (now + TimeDelta::seconds(540)).timestamp(),
            "iss": app_id.to_string(),
        });
        let claims = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).context("encoding JWT claims")?);
        let message = format!("{header}.{claims}");
        let mut sig = vec![0; self.0.public().modulus_len()];
        self.0
            .sign(&RSA_PKCS1_SHA256, &ring::rand::SystemRandom::new(), message.as_bytes(), &mut sig)
            .map_err(|e| anyhow!("signing the app JWT: {e}"))?;
        Ok(format!("{message}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }

    /// The public half, as a PKCS#1 `RSAPublicKey` (what verifiers take).
    pub fn public_key_der(&self) -> &[u8] {
        use ring::signature::KeyPair as _;
        self.0.public_key().as_ref()
    }
}

/// Verify an RS256 JWT against a PKCS#1 public key and return its claims
/// (signature and `exp` checked; the caller checks the rest).
pub fn verify(token: &str, public_key_der: &[u8], now: DateTime<Utc>) -> anyhow::Result<serde_json::Value> {
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(sig), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(anyhow!("not a JWT"));
    };
    let head: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header)?)?;
    if head["alg"] != "RS256" {
        return Err(anyhow!("algorithm {} is not RS256", head["alg"]));
    }
    let sig = URL_SAFE_NO_PAD.decode(sig)?;
    ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, public_key_der)
        .verify(format!("{header}.{claims}").as_bytes(), &sig)
        .map_err(|_| anyhow!("bad signature"))?;
    let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims)?)?;
    match claims["exp"].as_i64() {
        Some(exp) if exp > now.timestamp() => Ok(claims),
        _ => Err(anyhow!("expired or without exp")),
    }
}

/// The label and DER body of the first PEM block.
fn pem_body(pem: &str) -> anyhow::Result<(String, Vec<u8>)> {
    let begin = pem.find("-----BEGIN ").ok_or_else(|| anyhow!("no PEM BEGIN line"))?;
    let rest = &pem[begin + 11..];
    let label_end = rest.find("-----").ok_or_else(|| anyhow!("malformed PEM BEGIN line"))?;
    let label = rest[..label_end].to_owned();
    let body_start = label_end + 5;
    let end = rest.find("-----END ").ok_or_else(|| anyhow!("no PEM END line"))?;
    let b64: String = rest[body_start..end].chars().filter(|c| !c.is_whitespace()).collect();
    let der = STANDARD.decode(b64).context("PEM body is not base64")?;
    Ok((label, der))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRIVATE: &str = include_str!("../../../fakehub/keys/test-app.private.pem");

    #[test]
    fn signed_jwt_verifies_and_a_forged_one_does_not() {
        // GIVEN the test app's key
        let key = AppKey::from_pem(PRIVATE).expect("pem");
        let now = Utc::now();
        // WHEN a JWT is signed
        let token = key.jwt(42, now).expect("sign");
        // THEN it verifies against the public half, with the app id as issuer
        let claims = verify(&token, key.public_key_der(), now).expect("verify");
        assert_eq!(claims["iss"], "42");
        // AND other claims under the same signature do not
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(br#"{"iss":"43","exp":4102444800}"#);
        assert!(verify(&parts.join("."), key.public_key_der(), now).is_err());
        // AND it is expired ten minutes later
        assert!(verify(&token, key.public_key_der(), now + TimeDelta::minutes(10)).is_err());
        // AND a key of the wrong kind is refused with a reason
        let err = AppKey::from_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").unwrap_err();
        assert!(err.to_string().contains("CERTIFICATE"), "{err}");
    }
}
