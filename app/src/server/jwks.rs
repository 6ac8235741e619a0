//! Public keys published as a JWKS (RFC 7517) at a URL: an OpenID Connect issuer's, or the
//! provider's own for embed tokens. Fetched over a client that follows no redirects, cached,
//! and fetched again when a token names a `kid` the cache does not have (the publisher has
//! rotated its keys), at most once per [`MIN_REFRESH`].
//!
//! Each key is pinned to one algorithm: the JWK's `alg`, or the only sensible one for its type
//! (RSA: RS256, P-256: ES256, P-384: ES384, Ed25519: EdDSA). Symmetric and encryption keys
//! are left out: a signature made with an HMAC "key" proves nothing here.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use serde_json::Value;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// An unknown `kid` fetches the keys again, but not more often than this (failed fetches
/// count too).
pub const MIN_REFRESH: Duration = Duration::from_secs(10);
/// Keys older than this are fetched again before use, so a key the publisher withdrew stops
/// counting within the hour. If that fetch fails, the keys held keep counting.
pub const MAX_AGE: Duration = Duration::from_secs(60 * 60);
/// Documents larger than this are refused.
const MAX_DOCUMENT_BYTES: usize = 512 * 1024;

/// The HTTP client for identity providers and key sets: no redirects (a redirected token
/// request would carry its code elsewhere), a timeout, rustls.
pub fn http_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .user_agent(concat!("portico/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// GETs a JSON document; any failure is described for the log.
pub async fn get_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
) -> Result<T, String> {
    let res = http
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if !res.status().is_success() {
        return Err(format!("{url}: {}", res.status()));
    }
    if res
        .content_length()
        .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
    {
        return Err(format!("{url}: document too large"));
    }
    // Read a chunk at a time: a body without Content-Length is refused as soon as it passes
    // the limit, not after it has all arrived.
    let mut res = res;
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(|e| format!("{url}: {e}"))? {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(format!("{url}: document too large"));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| format!("{url}: {e}"))
}

/// Whether `alg` is a public-key signature algorithm.
pub fn is_asymmetric(alg: Algorithm) -> bool {
    !matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

struct Key {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

#[derive(Default)]
struct Cached {
    keys: Vec<Key>,
    /// The last successful fetch.
    fetched_at: Option<Instant>,
    /// The last attempt, successful or not.
    tried_at: Option<Instant>,
    /// Why the last attempt failed, if it did.
    failed: Option<String>,
}

/// Why no key was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// The set, freshly fetched, has no such key.
    Unknown,
    /// The set could not be fetched or read.
    Unavailable(String),
}

/// The keys at one URL, cached. A token whose key is held is checked at once, even while
/// another request waits for the publisher: only requests that need a fetch wait for it.
pub struct JwksCache {
    cached: std::sync::Mutex<Cached>,
    /// Held while fetching, so one fetch runs at a time.
    fetching: tokio::sync::Mutex<()>,
    min_refresh: Duration,
}

impl Default for JwksCache {
    fn default() -> Self {
        JwksCache::with_min_refresh(MIN_REFRESH)
    }
}

impl JwksCache {
    /// A cache that fetches again for an unknown `kid` at most once per `min_refresh`.
    pub fn with_min_refresh(min_refresh: Duration) -> Self {
        JwksCache {
            cached: std::sync::Mutex::default(),
            fetching: tokio::sync::Mutex::default(),
            min_refresh,
        }
    }

    fn cached(&self) -> std::sync::MutexGuard<'_, Cached> {
        self.cached.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The key a token's `kid` names (or the only key, when the token names none) and its
    /// pinned algorithm, from the set at `url`.
    pub async fn key(
        &self,
        http: &reqwest::Client,
        url: &str,
        kid: Option<&str>,
    ) -> Result<(Algorithm, DecodingKey), KeyError> {
        let find = |keys: &[Key]| -> Option<(Algorithm, DecodingKey)> {
            let found = match kid {
                Some(kid) => keys.iter().find(|k| k.kid.as_deref() == Some(kid)),
                None if keys.len() == 1 => keys.first(),
                None => None,
            };
            found.map(|k| (k.alg, k.key.clone()))
        };
        let fresh = |c: &Cached| c.fetched_at.is_some_and(|at| at.elapsed() < MAX_AGE);
        {
            let c = self.cached();
            if fresh(&c) {
                if let Some(k) = find(&c.keys) {
                    return Ok(k);
                }
            }
        }
        let _one_fetch = self.fetching.lock().await;
        {
            let mut c = self.cached();
            // Another request may have fetched while this one waited.
            if fresh(&c) {
                if let Some(k) = find(&c.keys) {
                    return Ok(k);
                }
            }
            if c.tried_at.is_some_and(|at| at.elapsed() < self.min_refresh) {
                return find(&c.keys).ok_or_else(|| match &c.failed {
                    Some(why) => KeyError::Unavailable(why.clone()),
                    None => KeyError::Unknown,
                });
            }
            c.tried_at = Some(Instant::now());
        }
        let fetched = get_json::<LenientSet>(http, url).await;
        let mut c = self.cached();
        match fetched {
            Ok(set) => {
                c.keys = set.keys.iter().filter_map(signing_key).collect();
                c.fetched_at = c.tried_at;
                c.failed = None;
                tracing::info!(%url, keys = c.keys.len(), "fetched signing keys");
            }
            Err(why) => {
                c.failed = Some(why.clone());
                return match find(&c.keys) {
                    Some(k) => {
                        tracing::warn!(%why, "signing keys not refreshed; using those held");
                        Ok(k)
                    }
                    None => Err(KeyError::Unavailable(why)),
                };
            }
        }
        find(&c.keys).ok_or(KeyError::Unknown)
    }
}

/// A JWKS whose keys are read one by one, so one key of a kind this portal does not know does
/// not hide the others.
#[derive(Deserialize)]
struct LenientSet {
    keys: Vec<Value>,
}

fn signing_key(v: &Value) -> Option<Key> {
    let jwk: Jwk = serde_json::from_value(v.clone()).ok()?;
    if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    let alg = match &jwk.common.key_algorithm {
        Some(a) => Algorithm::from_str(&a.to_string()).ok()?,
        None => match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Algorithm::RS256,
            AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
                Algorithm::ES256
            }
            AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P384 => {
                Algorithm::ES384
            }
            AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
                Algorithm::EdDSA
            }
            _ => return None,
        },
    };
    if !is_asymmetric(alg) {
        return None;
    }
    Some(Key {
        kid: jwk.common.key_id.clone(),
        alg,
        key: DecodingKey::from_jwk(&jwk).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A key set at a loopback URL: the first request is answered at once, later ones after
    /// `later` (a publisher gone slow).
    async fn publisher(later: Duration) -> String {
        let calls = Arc::new(AtomicUsize::new(0));
        let set = serde_json::json!({ "keys": [
            { "kty": "RSA", "kid": "held", "n": "sXch", "e": "AQAB" }
        ] });
        let app = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let (calls, set) = (calls.clone(), set.clone());
                async move {
                    if calls.fetch_add(1, Ordering::SeqCst) > 0 {
                        tokio::time::sleep(later).await;
                    }
                    axum::Json(set)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_held_key_is_served_while_a_slow_fetch_is_under_way() {
        let url = publisher(Duration::from_secs(5)).await;
        let http = http_client().unwrap();
        let cache = Arc::new(JwksCache::with_min_refresh(Duration::ZERO));
        assert!(cache.key(&http, &url, Some("held")).await.is_ok());
        // An unknown kid makes the cache fetch again, from a publisher that now takes 5 s.
        let slow = {
            let (cache, http, url) = (cache.clone(), http.clone(), url.clone());
            tokio::spawn(async move { cache.key(&http, &url, Some("new")).await })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        let held =
            tokio::time::timeout(Duration::from_secs(2), cache.key(&http, &url, Some("held")))
                .await;
        assert!(
            matches!(held, Ok(Ok(_))),
            "the held key does not wait for the fetch"
        );
        slow.abort();
    }

    #[tokio::test]
    async fn a_document_without_a_length_is_refused_once_it_passes_the_limit() {
        let endless = axum::Router::new().route(
            "/jwks",
            axum::routing::get(|| async {
                let chunk = bytes_of(64 * 1024);
                let stream =
                    futures::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
                axum::body::Body::from_stream(stream)
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, endless).await.unwrap() });
        let err = get_json::<serde_json::Value>(&http_client().unwrap(), &url)
            .await
            .unwrap_err();
        assert!(err.contains("too large"), "{err}");
    }

    fn bytes_of(n: usize) -> axum::body::Bytes {
        axum::body::Bytes::from(vec![b' '; n])
    }

    #[test]
    fn keys_are_pinned_and_symmetric_or_encryption_keys_left_out() {
        let rsa = serde_json::json!({ "kty": "RSA", "kid": "r", "n": "sXch", "e": "AQAB" });
        let k = signing_key(&rsa).expect("an RSA key");
        assert_eq!((k.kid.as_deref(), k.alg), (Some("r"), Algorithm::RS256));
        let ps = serde_json::json!({ "kty": "RSA", "kid": "p", "alg": "PS256", "n": "sXch", "e": "AQAB" });
        assert_eq!(signing_key(&ps).unwrap().alg, Algorithm::PS256);
        let enc = serde_json::json!({ "kty": "RSA", "use": "enc", "n": "sXch", "e": "AQAB" });
        assert!(signing_key(&enc).is_none());
        let oct = serde_json::json!({ "kty": "oct", "alg": "HS256", "k": "c2VjcmV0" });
        assert!(signing_key(&oct).is_none());
        let hs_on_rsa =
            serde_json::json!({ "kty": "RSA", "alg": "HS256", "n": "sXch", "e": "AQAB" });
        assert!(signing_key(&hs_on_rsa).is_none());
        let unknown = serde_json::json!({ "kty": "XYZ" });
        assert!(signing_key(&unknown).is_none());
    }
}
