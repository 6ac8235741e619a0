//! Embed tokens: short-lived JWTs the provider's backend mints so that its site can show the
//! portal in an iframe, signed in as its user, without a second sign-in.
//!
//! What a token must be, each checked here: a JWS whose header names `typ` [`TOKEN_TYPE`] (so no
//! other kind of token is accepted) and a `kid` the configuration lists, signed with exactly the
//! algorithm pinned to that key; claims `iss` and `aud` as configured; `exp` in the future and
//! at most [`MAX_LIFETIME_SECS`] after `iat`; `iat` not in the future; `sub`, `email`, `tenant`,
//! `role` and `jti` present and well-formed. Single use (`jti`) is the store's job.

use crate::domain::provider::{Embed, EmbedAlgorithm, EmbedKey};
use crate::domain::{ConfigIssue, Email, Role, TenantId};
use crate::server::jwks::{JwksCache, KeyError};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The `typ` header of an embed token.
pub const TOKEN_TYPE: &str = "portico-embed+jwt";
/// Longest accepted `exp - iat`.
pub const MAX_LIFETIME_SECS: u64 = 300;
/// Clock skew tolerated between the provider's backend and the portal.
pub const LEEWAY_SECS: u64 = 30;

/// The claims of an embed token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbedClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub email: String,
    pub tenant: String,
    pub role: String,
    pub iat: u64,
    pub exp: u64,
    pub jti: String,
    /// Display name for a member created just in time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A verified token, its claims parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedIdentity {
    pub email: Email,
    pub tenant: TenantId,
    pub role: Role,
    pub name: Option<String>,
    pub jti: String,
    /// When the token stops being valid (Unix seconds): how long its `jti` must be remembered.
    pub exp: u64,
}

/// Why a token was refused. The person in the iframe sees [`EmbedRejection::message`]; the
/// log gets the variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmbedRejection {
    #[error("not a JWT")]
    Malformed,
    #[error("typ is not {TOKEN_TYPE}")]
    WrongType,
    #[error("no configured key has this kid")]
    UnknownKey,
    #[error("alg differs from the algorithm pinned to the key")]
    WrongAlgorithm,
    #[error("bad signature")]
    BadSignature,
    #[error("expired")]
    Expired,
    #[error("issued in the future or not yet valid")]
    NotYetValid,
    #[error("lives longer than {MAX_LIFETIME_SECS} s")]
    LifetimeTooLong,
    #[error("wrong issuer")]
    WrongIssuer,
    #[error("wrong audience")]
    WrongAudience,
    #[error("claim {0} is missing or malformed")]
    BadClaim(&'static str),
    #[error("already used")]
    Replayed,
    #[error("the provider's key set could not be fetched")]
    KeysUnavailable,
}

impl EmbedRejection {
    /// What the person in the iframe reads: enough to act on, nothing to probe with.
    pub fn message(&self) -> &'static str {
        match self {
            EmbedRejection::Expired => {
                "This sign-in link has expired. Reload the page to get a new one."
            }
            EmbedRejection::Replayed => {
                "This sign-in link was already used. Reload the page to get a new one."
            }
            EmbedRejection::KeysUnavailable => {
                "Signing in is not possible right now. Reload the page in a minute."
            }
            _ => "This sign-in link is not valid. Reload the page; if it happens again, contact support.",
        }
    }
}

fn algorithm(a: EmbedAlgorithm) -> Algorithm {
    match a {
        EmbedAlgorithm::EdDSA => Algorithm::EdDSA,
        EmbedAlgorithm::ES256 => Algorithm::ES256,
        EmbedAlgorithm::RS256 => Algorithm::RS256,
        EmbedAlgorithm::HS256 => Algorithm::HS256,
    }
}

struct Key {
    kid: String,
    alg: Algorithm,
    key: DecodingKey,
}

/// The provider's published key set, when the configuration names one.
struct KeySet {
    url: String,
    http: reqwest::Client,
    cache: JwksCache,
}

/// Verifies embed tokens against the configured issuer, audience and keys.
pub struct EmbedVerifier {
    issuer: String,
    audience: String,
    keys: Vec<Key>,
    jwks: Option<KeySet>,
}

impl std::fmt::Debug for EmbedVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<_> = self.keys.iter().map(|k| (&k.kid, k.alg)).collect();
        f.debug_struct("EmbedVerifier")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("keys", &kids)
            .field("jwks_url", &self.jwks.as_ref().map(|j| &j.url))
            .finish()
    }
}

/// The minimum length of an HS256 secret, in bytes (RFC 7518 §3.2: at least the hash size).
pub const MIN_SECRET_BYTES: usize = 32;

impl EmbedVerifier {
    /// Builds the verifier, reading HS256 secrets through `env`. Every problem is reported, by
    /// key.
    pub fn new(cfg: &Embed, env: impl Fn(&str) -> Option<String>) -> Result<Self, Vec<String>> {
        let mut keys = Vec::new();
        let mut problems = Vec::new();
        for (i, k) in cfg.keys.iter().enumerate() {
            let key = match (&k.secret_env, k.algorithm) {
                (Some(var), EmbedAlgorithm::HS256) => match env(var) {
                    Some(s) if s.len() >= MIN_SECRET_BYTES => {
                        Ok(DecodingKey::from_secret(s.as_bytes()))
                    }
                    Some(_) => Err(format!(
                        "the secret in {var} is shorter than {MIN_SECRET_BYTES} bytes"
                    )),
                    None => Err(format!("the environment variable {var} is not set")),
                },
                _ => public_key(k),
            };
            match key {
                Ok(key) => keys.push(Key {
                    kid: k.kid.clone(),
                    alg: algorithm(k.algorithm),
                    key,
                }),
                Err(e) => problems.push(format!("embed.keys.{i} ({}): {e}", k.kid)),
            }
        }
        let jwks = match &cfg.jwks_url {
            None => None,
            Some(url) => match crate::server::jwks::http_client() {
                Ok(http) => Some(KeySet {
                    url: url.clone(),
                    http,
                    cache: JwksCache::default(),
                }),
                Err(e) => {
                    problems.push(format!(
                        "embed.jwks_url: the HTTP client does not start: {e}"
                    ));
                    None
                }
            },
        };
        if problems.is_empty() {
            Ok(EmbedVerifier {
                issuer: cfg.issuer.clone(),
                audience: cfg.audience.clone(),
                keys,
                jwks,
            })
        } else {
            Err(problems)
        }
    }

    /// Checks everything about `token` but whether its `jti` was seen before, with the keys in
    /// the configuration.
    pub fn verify(&self, token: &str, now: u64) -> Result<EmbedIdentity, EmbedRejection> {
        let (header, key) = self.inline_key(token)?;
        match key {
            Some(k) => self.check(token, now, &header, k.alg, &k.key),
            None => Err(EmbedRejection::UnknownKey),
        }
    }

    /// As [`EmbedVerifier::verify`], also with the keys at the configured `jwks_url`, fetched
    /// again when the token names a `kid` not seen yet.
    pub async fn verify_fetching(
        &self,
        token: &str,
        now: u64,
    ) -> Result<EmbedIdentity, EmbedRejection> {
        let (header, key) = self.inline_key(token)?;
        if let Some(k) = key {
            return self.check(token, now, &header, k.alg, &k.key);
        }
        let (Some(set), Some(kid)) = (&self.jwks, header.kid.as_deref()) else {
            return Err(EmbedRejection::UnknownKey);
        };
        let (alg, key) = set
            .cache
            .key(&set.http, &set.url, Some(kid))
            .await
            .map_err(|e| match e {
                KeyError::Unknown => EmbedRejection::UnknownKey,
                KeyError::Unavailable(why) => {
                    tracing::warn!(%why, "the embed key set could not be fetched");
                    EmbedRejection::KeysUnavailable
                }
            })?;
        self.check(token, now, &header, alg, &key)
    }

    /// The token's header (a JWS with the embed token's `typ` and a `kid`) and the inline key
    /// with that `kid`, if any.
    fn inline_key(&self, token: &str) -> Result<(Header, Option<&Key>), EmbedRejection> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| EmbedRejection::Malformed)?;
        if header.typ.as_deref() != Some(TOKEN_TYPE) {
            return Err(EmbedRejection::WrongType);
        }
        let kid = header.kid.as_deref().ok_or(EmbedRejection::UnknownKey)?;
        let key = self.keys.iter().find(|k| k.kid == kid);
        Ok((header, key))
    }

    fn check(
        &self,
        token: &str,
        now: u64,
        header: &Header,
        alg: Algorithm,
        key: &DecodingKey,
    ) -> Result<EmbedIdentity, EmbedRejection> {
        // The key decides the algorithm, never the token: an RS256 public key is not an HS256
        // secret, whatever the header says.
        if header.alg != alg {
            return Err(EmbedRejection::WrongAlgorithm);
        }
        let mut v = Validation::new(alg);
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[&self.audience]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.leeway = LEEWAY_SECS;
        v.validate_nbf = true;
        let data = jsonwebtoken::decode::<EmbedClaims>(token, key, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::InvalidSignature => EmbedRejection::BadSignature,
                K::ExpiredSignature => EmbedRejection::Expired,
                K::ImmatureSignature => EmbedRejection::NotYetValid,
                K::InvalidIssuer => EmbedRejection::WrongIssuer,
                K::InvalidAudience => EmbedRejection::WrongAudience,
                K::InvalidAlgorithm => EmbedRejection::WrongAlgorithm,
                K::MissingRequiredClaim(_) | K::InvalidClaimFormat(_) | K::Json(_) => {
                    EmbedRejection::BadClaim("a required claim")
                }
                _ => EmbedRejection::Malformed,
            }
        })?;
        let c = data.claims;
        if c.iat > now + LEEWAY_SECS {
            return Err(EmbedRejection::NotYetValid);
        }
        if c.exp.saturating_sub(c.iat) > MAX_LIFETIME_SECS {
            return Err(EmbedRejection::LifetimeTooLong);
        }
        // jsonwebtoken allows `leeway` past `exp`; a five-minute token gets no more than that.
        if c.exp + LEEWAY_SECS <= now {
            return Err(EmbedRejection::Expired);
        }
        if c.jti.is_empty() || c.jti.len() > 200 {
            return Err(EmbedRejection::BadClaim("jti"));
        }
        if c.sub.is_empty() {
            return Err(EmbedRejection::BadClaim("sub"));
        }
        Ok(EmbedIdentity {
            email: Email::parse(&c.email).map_err(|_| EmbedRejection::BadClaim("email"))?,
            tenant: TenantId::parse(&c.tenant).map_err(|_| EmbedRejection::BadClaim("tenant"))?,
            role: Role::parse(&c.role).ok_or(EmbedRejection::BadClaim("role"))?,
            name: c.name.filter(|n| !n.trim().is_empty() && n.len() <= 200),
            jti: c.jti,
            exp: c.exp,
        })
    }
}

fn public_key(k: &EmbedKey) -> Result<DecodingKey, String> {
    let pem = k
        .public_key
        .as_deref()
        .ok_or("the key needs public_key (or, for HS256, secret_env)")?
        .as_bytes();
    match k.algorithm {
        EmbedAlgorithm::EdDSA => DecodingKey::from_ed_pem(pem)
            .map_err(|e| format!("public_key is not an Ed25519 PEM public key ({e})")),
        EmbedAlgorithm::ES256 => DecodingKey::from_ec_pem(pem)
            .map_err(|e| format!("public_key is not a P-256 PEM public key ({e})")),
        EmbedAlgorithm::RS256 => DecodingKey::from_rsa_pem(pem)
            .map_err(|e| format!("public_key is not an RSA PEM public key ({e})")),
        EmbedAlgorithm::HS256 => Err("an HS256 key takes secret_env, not public_key".into()),
    }
}

/// Public keys that do not parse, as configuration problems (`check-config` reports them with
/// their line). HS256 secrets live in the environment and are checked at start-up.
pub fn key_issues(cfg: &Embed) -> Vec<ConfigIssue> {
    cfg.keys
        .iter()
        .enumerate()
        .filter(|(_, k)| k.public_key.is_some() && k.algorithm != EmbedAlgorithm::HS256)
        .filter_map(|(i, k)| {
            public_key(k).err().map(|message| ConfigIssue {
                path: vec![
                    "embed".into(),
                    "keys".into(),
                    i.to_string(),
                    "public_key".into(),
                ],
                message,
            })
        })
        .collect()
}

/// Signs an embed token: what a provider's backend does, here for the CLI and tests. `key` is
/// a PEM private key (PKCS#8), or the secret itself for HS256.
pub fn mint(
    alg: EmbedAlgorithm,
    kid: &str,
    key: &[u8],
    claims: &EmbedClaims,
) -> Result<String, jsonwebtoken::errors::Error> {
    let encoding = match alg {
        EmbedAlgorithm::EdDSA => EncodingKey::from_ed_pem(key)?,
        EmbedAlgorithm::ES256 => EncodingKey::from_ec_pem(key)?,
        EmbedAlgorithm::RS256 => EncodingKey::from_rsa_pem(key)?,
        EmbedAlgorithm::HS256 => EncodingKey::from_secret(key),
    };
    let mut header = Header::new(algorithm(alg));
    header.typ = Some(TOKEN_TYPE.into());
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, claims, &encoding)
}
