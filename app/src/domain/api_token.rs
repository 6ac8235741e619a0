//! API credentials as people handle them: a tenant's API tokens and the provider's keys.
//!
//! A secret reads `ptk_` (tenant token) or `ppk_` (provider key), then 30 random base62
//! characters, then 6 base62 characters of the CRC-32 of everything before them, as GitHub's
//! `ghp_` tokens do. The prefix lets a secret scanner (or a person) recognise a leaked one; the
//! checksum lets it tell a real secret from a look-alike without asking us, and lets Portico
//! refuse a mistyped one without a database lookup. Only a hash of the secret is ever stored.

use super::Role;
use serde::{Deserialize, Serialize};

/// An API token as the portal's page lists it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiTokenView {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub created_by: String,
    pub created_at: String,
    /// When it stops working, if it does.
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    /// Revoked or expired: it no longer works.
    pub ended: bool,
}

/// A token just created, with its secret: shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedApiToken {
    pub token: ApiTokenView,
    pub secret: String,
}

/// What a secret is for, told by its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// A tenant's API token: `/api/v1`, acting with the token's role in its tenant.
    TenantToken,
    /// A provider key: `/provider/v1` only.
    ProviderKey,
}

impl SecretKind {
    pub fn prefix(self) -> &'static str {
        match self {
            SecretKind::TenantToken => "ptk_",
            SecretKind::ProviderKey => "ppk_",
        }
    }
}

/// Random characters in a secret: 30 base62 characters carry 178 bits.
pub const RANDOM_LEN: usize = 30;
const CHECKSUM_LEN: usize = 6;
/// The length of every secret, prefix included.
pub const SECRET_LEN: usize = 4 + RANDOM_LEN + CHECKSUM_LEN;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The secret of `kind` made from `random` (one byte per character; each is reduced to base62
/// by rejection in the caller, so here any byte below 248 maps evenly).
pub fn compose(kind: SecretKind, random: &[u8; RANDOM_LEN]) -> String {
    let mut s = String::with_capacity(SECRET_LEN);
    s.push_str(kind.prefix());
    s.extend(random.iter().map(|b| BASE62[usize::from(*b) % 62] as char));
    let sum = checksum(&s);
    s.push_str(&sum);
    s
}

/// Whether `secret` is well formed for `kind`: the prefix, the length, base62 and a checksum
/// that matches. Says nothing of whether it was ever issued.
pub fn well_formed(kind: SecretKind, secret: &str) -> bool {
    if secret.len() != SECRET_LEN || !secret.starts_with(kind.prefix()) {
        return false;
    }
    if !secret.bytes().skip(4).all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let (body, sum) = secret.split_at(SECRET_LEN - CHECKSUM_LEN);
    checksum(body) == sum
}

/// The kind a secret claims by its prefix, if any.
pub fn kind_of(secret: &str) -> Option<SecretKind> {
    [SecretKind::TenantToken, SecretKind::ProviderKey]
        .into_iter()
        .find(|k| secret.starts_with(k.prefix()))
}

/// CRC-32 (IEEE) of `s`, as 6 base62 digits (62^6 > 2^32).
fn checksum(s: &str) -> String {
    let mut n = crc32(s.as_bytes());
    let mut digits = [b'0'; CHECKSUM_LEN];
    for d in digits.iter_mut().rev() {
        *d = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8_lossy(&digits).into_owned()
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

/// How far a role reaches: a token may be given a role no higher than its creator's.
fn rank(r: Role) -> u8 {
    match r {
        Role::Viewer => 0,
        Role::Operator => 1,
        Role::Admin => 2,
    }
}

/// Whether someone with `creator`'s role may create a token acting as `role`.
pub fn may_grant(creator: Role, role: Role) -> bool {
    rank(role) <= rank(creator)
}

/// Why a token name is refused, if it is: 1 to 64 characters, none of them control characters.
pub fn check_name(name: &str) -> Result<(), &'static str> {
    let name = name.trim();
    if name.is_empty() {
        return Err("must not be empty");
    }
    if name.chars().count() > 64 {
        return Err("must be at most 64 characters");
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn a_composed_secret_is_well_formed_and_says_its_kind() {
        let random = [7u8; RANDOM_LEN];
        let t = compose(SecretKind::TenantToken, &random);
        assert_eq!(t.len(), SECRET_LEN);
        assert!(t.starts_with("ptk_"));
        assert!(well_formed(SecretKind::TenantToken, &t));
        assert!(!well_formed(SecretKind::ProviderKey, &t));
        assert_eq!(kind_of(&t), Some(SecretKind::TenantToken));
        let k = compose(SecretKind::ProviderKey, &random);
        assert!(well_formed(SecretKind::ProviderKey, &k));
        assert_eq!(kind_of(&k), Some(SecretKind::ProviderKey));
    }

    #[test]
    fn a_mistyped_secret_fails_its_checksum() {
        let t = compose(SecretKind::TenantToken, &[1u8; RANDOM_LEN]);
        let mut typo = t.clone().into_bytes();
        typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };
        let typo = String::from_utf8(typo).unwrap();
        assert!(!well_formed(SecretKind::TenantToken, &typo));
        assert!(!well_formed(SecretKind::TenantToken, &t[..SECRET_LEN - 1]));
        assert!(!well_formed(SecretKind::TenantToken, "ptk_"));
        assert!(!well_formed(
            SecretKind::TenantToken,
            &format!("{}!", &t[..SECRET_LEN - 1])
        ));
    }

    #[test]
    fn a_token_reaches_no_higher_than_its_creator() {
        assert!(may_grant(Role::Admin, Role::Admin));
        assert!(may_grant(Role::Admin, Role::Viewer));
        assert!(may_grant(Role::Operator, Role::Operator));
        assert!(may_grant(Role::Operator, Role::Viewer));
        assert!(!may_grant(Role::Operator, Role::Admin));
        assert!(!may_grant(Role::Viewer, Role::Operator));
    }

    #[test]
    fn token_names_are_short_printable_text() {
        assert!(check_name("nightly stop").is_ok());
        assert!(check_name("  ").is_err());
        assert!(check_name(&"x".repeat(65)).is_err());
        assert!(check_name("a\u{7}b").is_err());
    }
}
