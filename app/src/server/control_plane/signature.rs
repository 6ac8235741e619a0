//! Signatures of the control-plane API, as the Standard Webhooks specification
//! (standardwebhooks.com) defines them, so providers can use its libraries on their side.
//!
//! A secret is `whsec_` followed by base64 of the key. A message is signed as
//! `v1,` + base64(HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}")); the
//! `webhook-signature` header carries one or more such signatures separated by spaces, so a
//! sender signs with both secrets while they are being rotated and a receiver accepts either.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const ID_HEADER: &str = "webhook-id";
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const SIGNATURE_HEADER: &str = "webhook-signature";
/// How far a message's timestamp may be from the receiver's clock, either way.
pub const TOLERANCE_SECS: i64 = 5 * 60;

const PREFIX: &str = "whsec_";

/// One signing key.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl Secret {
    /// Reads `whsec_<base64>`; the prefix is required so a secret pasted in the wrong place
    /// is noticed.
    pub fn parse(s: &str) -> Result<Secret, String> {
        let b64 = s
            .trim()
            .strip_prefix(PREFIX)
            .ok_or_else(|| format!("a signing secret starts with {PREFIX}"))?;
        let key = B64
            .decode(b64)
            .map_err(|_| format!("a signing secret is {PREFIX} followed by base64"))?;
        if key.len() < 16 {
            return Err("a signing secret must hold at least 16 bytes of key".into());
        }
        Ok(Secret(key))
    }

    /// A fresh random secret, in the form [`Secret::parse`] reads.
    pub fn generate() -> String {
        use rand::RngCore;
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        format!("{PREFIX}{}", B64.encode(key))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// `v1,<base64>` for this message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        format!(
            "v1,{}",
            B64.encode(self.mac(id, timestamp, body).finalize().into_bytes())
        )
    }
}

/// The secrets of one direction: the first signs, any verifies (rotation keeps two).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyring(Vec<Secret>);

/// Why a signed message was refused. Each answers 401 and changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the webhook-id, webhook-timestamp or webhook-signature header is missing")]
    Missing,
    #[error("webhook-timestamp is not a number of seconds")]
    BadTimestamp,
    #[error("webhook-timestamp is more than five minutes from this server's clock")]
    Stale,
    #[error("no signature matches")]
    BadSignature,
}

impl Keyring {
    /// One or two secrets separated by whitespace, as an environment variable holds them
    /// while a secret is being rotated.
    pub fn parse(value: &str) -> Result<Keyring, String> {
        let secrets = value
            .split_whitespace()
            .map(Secret::parse)
            .collect::<Result<Vec<_>, _>>()?;
        match secrets.len() {
            0 => Err("no signing secret is set".into()),
            1 | 2 => Ok(Keyring(secrets)),
            _ => Err("at most two signing secrets (the new and the old) at once".into()),
        }
    }

    /// The `webhook-signature` header: one signature per secret.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        self.0
            .iter()
            .map(|s| s.sign(id, timestamp, body))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Checks a received message at `now` (seconds since the epoch). Comparison is constant
    /// time; an unknown version (not `v1`) is ignored, as the specification asks.
    pub fn verify(
        &self,
        id: Option<&str>,
        timestamp: Option<&str>,
        signatures: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<(), Rejection> {
        let (Some(id), Some(timestamp), Some(signatures)) = (id, timestamp, signatures) else {
            return Err(Rejection::Missing);
        };
        if id.is_empty() {
            return Err(Rejection::Missing);
        }
        let ts: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| Rejection::BadTimestamp)?;
        if (now - ts).abs() > TOLERANCE_SECS {
            return Err(Rejection::Stale);
        }
        let presented: Vec<Vec<u8>> = signatures
            .split_whitespace()
            .filter_map(|s| s.strip_prefix("v1,"))
            .filter_map(|b| B64.decode(b).ok())
            .collect();
        let ok = self.0.iter().any(|secret| {
            presented
                .iter()
                .any(|sig| secret.mac(id, ts, body).verify_slice(sig).is_ok())
        });
        if ok {
            Ok(())
        } else {
            Err(Rejection::BadSignature)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example of the Standard Webhooks specification's reference libraries.
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TS: i64 = 1614265330;
    const SPEC_BODY: &str = r#"{"test": 2432232314}"#;
    const SPEC_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn signs_as_the_specification_example_does() {
        let s = Secret::parse(SPEC_SECRET).unwrap();
        assert_eq!(s.sign(SPEC_ID, SPEC_TS, SPEC_BODY.as_bytes()), SPEC_SIG);
    }

    #[test]
    fn verifies_a_good_message_and_refuses_tampering() {
        let ring = Keyring::parse(SPEC_SECRET).unwrap();
        let ts = SPEC_TS.to_string();
        let ok = |id, body: &str, sig| {
            ring.verify(
                Some(id),
                Some(&ts),
                Some(sig),
                body.as_bytes(),
                SPEC_TS + 10,
            )
        };
        assert_eq!(ok(SPEC_ID, SPEC_BODY, SPEC_SIG), Ok(()));
        assert_eq!(
            ok(SPEC_ID, r#"{"test": 1}"#, SPEC_SIG),
            Err(Rejection::BadSignature)
        );
        assert_eq!(
            ok("msg_other", SPEC_BODY, SPEC_SIG),
            Err(Rejection::BadSignature)
        );
        let with_unknown_first = format!("v2,abc {SPEC_SIG}");
        assert_eq!(ok(SPEC_ID, SPEC_BODY, &with_unknown_first), Ok(()));
        assert_eq!(
            ok(SPEC_ID, SPEC_BODY, "v1,notbase64!"),
            Err(Rejection::BadSignature)
        );
    }

    #[test]
    fn a_timestamp_beyond_five_minutes_either_way_is_refused() {
        let ring = Keyring::parse(SPEC_SECRET).unwrap();
        let at = |now| {
            ring.verify(
                Some(SPEC_ID),
                Some(&SPEC_TS.to_string()),
                Some(SPEC_SIG),
                SPEC_BODY.as_bytes(),
                now,
            )
        };
        assert_eq!(at(SPEC_TS + 300), Ok(()));
        assert_eq!(at(SPEC_TS - 300), Ok(()));
        assert_eq!(at(SPEC_TS + 301), Err(Rejection::Stale));
        assert_eq!(at(SPEC_TS - 301), Err(Rejection::Stale));
        assert_eq!(
            ring.verify(Some(SPEC_ID), Some("soon"), Some(SPEC_SIG), b"", SPEC_TS),
            Err(Rejection::BadTimestamp)
        );
        assert_eq!(
            ring.verify(Some(SPEC_ID), None, Some(SPEC_SIG), b"", SPEC_TS),
            Err(Rejection::Missing)
        );
    }

    #[test]
    fn during_rotation_both_secrets_sign_and_either_verifies() {
        let new = Secret::generate();
        let both = Keyring::parse(&format!("{new} {SPEC_SECRET}")).unwrap();
        let header = both.sign(SPEC_ID, SPEC_TS, SPEC_BODY.as_bytes());
        assert_eq!(header.split(' ').count(), 2);
        assert!(header.ends_with(SPEC_SIG));
        let old_only = Keyring::parse(SPEC_SECRET).unwrap();
        let new_only = Keyring::parse(&new).unwrap();
        for ring in [&old_only, &new_only] {
            let ts = SPEC_TS.to_string();
            let r = ring.verify(
                Some(SPEC_ID),
                Some(&ts),
                Some(&header),
                SPEC_BODY.as_bytes(),
                SPEC_TS,
            );
            assert_eq!(r, Ok(()));
        }
    }

    #[test]
    fn secrets_are_checked_when_read() {
        assert!(Secret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(Secret::parse("whsec_***").is_err());
        assert!(Secret::parse("whsec_c2hvcnQ=").is_err());
        assert!(Keyring::parse("  ").is_err());
        let three = format!("{SPEC_SECRET} {SPEC_SECRET} {SPEC_SECRET}");
        assert!(Keyring::parse(&three).is_err());
        assert_eq!(
            format!("{:?}", Secret::parse(SPEC_SECRET).unwrap()),
            "Secret([redacted])"
        );
    }
}
