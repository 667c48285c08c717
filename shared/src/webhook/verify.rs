//! `X-Hub-Signature-256` verification: HMAC-SHA256 over the raw body,
//! compared in constant time, against every configured secret (rotation).

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a signature was refused. Every variant means 401, nothing stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing X-Hub-Signature-256 header")]
    Missing,
    #[error("malformed X-Hub-Signature-256 header: expected sha256= and 64 hex digits")]
    Malformed,
    #[error("X-Hub-Signature-256 does not match any configured webhook secret")]
    Mismatch,
}

/// A webhook secret list that was empty or held an empty entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SecretsError(&'static str);

/// The webhook secrets, pre-keyed. The secret text itself is not kept and
/// cannot be printed: `Debug` shows only how many there are.
#[derive(Clone)]
pub struct WebhookSecrets {
    keys: Vec<HmacSha256>,
}

impl fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookSecrets({} secret(s), redacted)", self.keys.len())
    }
}

impl WebhookSecrets {
    /// Comma-separated secrets; each is used as given (surrounding blanks are trimmed).
    pub fn parse(list: &str) -> Result<Self, SecretsError> {
        let mut keys = Vec::new();
        for secret in list.split(',') {
            let secret = secret.trim();
            if secret.is_empty() {
                return Err(SecretsError("an entry is empty (secrets are comma-separated; none may be blank)"));
            }
            // HMAC accepts keys of any length; this cannot fail.
            keys.push(HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length"));
        }
        Ok(Self { keys })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Check `header` (the `X-Hub-Signature-256` value) against `body`.
    pub fn verify(&self, header: Option<&[u8]>, body: &[u8]) -> Result<(), SignatureError> {
        let header = header.ok_or(SignatureError::Missing)?;
        let hex_digest = header.strip_prefix(b"sha256=").ok_or(SignatureError::Malformed)?;
        let mut expected = [0u8; 32];
        hex::decode_to_slice(hex_digest, &mut expected).map_err(|_| SignatureError::Malformed)?;
        // Each comparison is constant-time (verify_slice). Stopping at the first
        // match only tells which secret matched, not anything about a secret;
        // list the newest secret first so rotation costs nothing.
        let matched = self.keys.iter().any(|key| {
            let mut mac = key.clone();
            mac.update(body);
            mac.verify_slice(&expected).is_ok()
        });
        if matched { Ok(()) } else { Err(SignatureError::Mismatch) }
    }
}

/// Sign `body` as GitHub does: `sha256=` + hex HMAC. For tests and tools.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTOR: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn githubs_published_test_vector() {
        // GIVEN GitHub's documented secret and body WHEN signed and verified THEN the published digest matches
        assert_eq!(sign("It's a Secret to Everybody", b"Hello, World!"), VECTOR);
        let secrets = WebhookSecrets::parse("It's a Secret to Everybody").unwrap();
        assert_eq!(secrets.verify(Some(VECTOR.as_bytes()), b"Hello, World!"), Ok(()));
    }

    #[test]
    fn any_configured_secret_is_accepted_for_rotation() {
        let secrets = WebhookSecrets::parse("old-secret, It's a Secret to Everybody").unwrap();
        assert_eq!(secrets.len(), 2);
        assert_eq!(secrets.verify(Some(VECTOR.as_bytes()), b"Hello, World!"), Ok(()));
        let old = sign("old-secret", b"Hello, World!");
        assert_eq!(secrets.verify(Some(old.as_bytes()), b"Hello, World!"), Ok(()));
    }

    #[test]
    fn bad_signatures_are_refused_with_their_reason() {
        let secrets = WebhookSecrets::parse("It's a Secret to Everybody").unwrap();
        let body = b"Hello, World!";
        assert_eq!(secrets.verify(None, body), Err(SignatureError::Missing));
        assert_eq!(secrets.verify(Some(b""), body), Err(SignatureError::Malformed));
        assert_eq!(secrets.verify(Some(&VECTOR.as_bytes()[..VECTOR.len() - 8]), body), Err(SignatureError::Malformed));
        assert_eq!(secrets.verify(Some(&VECTOR.as_bytes()[7..]), body), Err(SignatureError::Malformed));
        let not_hex = format!("sha256={}", "zz".repeat(32));
        assert_eq!(secrets.verify(Some(not_hex.as_bytes()), body), Err(SignatureError::Malformed));
        let sha1 = b"sha1=0123456789abcdef0123456789abcdef01234567";
        assert_eq!(secrets.verify(Some(sha1), body), Err(SignatureError::Malformed));
        assert_eq!(secrets.verify(Some(VECTOR.as_bytes()), b"Hello, World?"), Err(SignatureError::Mismatch));
        let wrong = sign("wrong secret", body);
        assert_eq!(secrets.verify(Some(wrong.as_bytes()), body), Err(SignatureError::Mismatch));
    }

    #[test]
    fn only_the_exact_digest_of_a_configured_secret_passes() {
        // GIVEN the right signature WHEN changed in its last or first hex digit, shortened or
        // lengthened, or made with a prefix or extension of the secret THEN it is refused
        let secrets = WebhookSecrets::parse("It's a Secret to Everybody").unwrap();
        let body = b"Hello, World!";
        assert_eq!(secrets.verify(Some(VECTOR.as_bytes()), body), Ok(()));
        let last_changed = format!("{}6", &VECTOR[..VECTOR.len() - 1]);
        let first_changed = format!("sha256=8{}", &VECTOR[8..]);
        for same_length in [last_changed, first_changed] {
            assert_eq!(secrets.verify(Some(same_length.as_bytes()), body), Err(SignatureError::Mismatch));
        }
        let longer = format!("{VECTOR}00");
        for other_length in [&VECTOR[..VECTOR.len() - 2], longer.as_str()] {
            assert_eq!(secrets.verify(Some(other_length.as_bytes()), body), Err(SignatureError::Malformed));
        }
        for near in ["It's a Secret to Everybod", "It's a Secret to Everybody!"] {
            let sig = sign(near, body);
            assert_eq!(secrets.verify(Some(sig.as_bytes()), body), Err(SignatureError::Mismatch), "{near}");
        }
    }

    #[test]
    fn empty_secret_lists_are_refused_and_debug_hides_secrets() {
        assert!(WebhookSecrets::parse("").is_err());
        assert!(WebhookSecrets::parse("a,,b").is_err());
        let s = WebhookSecrets::parse("hunter2-very-secret").unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
