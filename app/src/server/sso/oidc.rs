//! The OpenID Connect client: discovery, the authorization URL, the code exchange and ID
//! token verification, per configured issuer.

use crate::domain::provider::{is_issuer_url, SsoIssuer};
use crate::domain::Email;
use crate::server::jwks::{self, is_asymmetric, JwksCache, KeyError};
use axum::http::StatusCode;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RequestTokenError, Scope, StandardRevocableToken, StandardTokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Clock skew tolerated between the issuer and the portal.
pub const LEEWAY_SECS: u64 = 60;
/// An ID token issued longer ago than this is refused, whatever its `exp`.
pub const MAX_TOKEN_AGE_SECS: u64 = 10 * 60;
/// Discovery documents are read again after this long.
const DISCOVERY_TTL: Duration = Duration::from_secs(60 * 60);

/// Why a sign-in failed. The person sees [`SsoError::message`]; the log gets the variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SsoError {
    #[error("the issuer could not be reached or answered badly: {0}")]
    Issuer(String),
    #[error("unknown or already used state")]
    WrongState,
    #[error("the sign-in was started in another browser")]
    WrongBrowser,
    #[error("the issuer reported an error: {0}")]
    Denied(String),
    #[error("the issuer refused the code: {0}")]
    CodeRefused(String),
    #[error("the ID token is not a JWT")]
    Malformed,
    #[error("the ID token's alg is not the algorithm of its key")]
    WrongAlgorithm,
    #[error("no key of the issuer has the ID token's kid")]
    UnknownKey,
    #[error("the ID token's signature is bad")]
    BadSignature,
    #[error("the ID token has expired")]
    Expired,
    #[error("the ID token is not yet valid, or too old")]
    BadTime,
    #[error("the ID token's iss is not the issuer")]
    WrongIssuer,
    #[error("the ID token's aud or azp is not this client")]
    WrongAudience,
    #[error("the ID token's nonce is not this sign-in's")]
    WrongNonce,
    #[error("the ID token's claim {0} is missing or malformed")]
    BadClaim(&'static str),
}

impl SsoError {
    /// What the person reads: enough to act on, nothing to probe with.
    pub fn message(&self) -> &'static str {
        match self {
            SsoError::Issuer(_) => {
                "The sign-in service cannot be reached right now. Try again in a minute."
            }
            SsoError::WrongState | SsoError::WrongBrowser => {
                "This sign-in has expired or was already used. Start again from the sign-in page."
            }
            SsoError::Denied(_) => "The sign-in service did not sign you in.",
            _ => "The sign-in service's answer could not be verified, so you are not signed in. If it happens again, contact support.",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            SsoError::Issuer(_) => StatusCode::BAD_GATEWAY,
            SsoError::WrongState | SsoError::WrongBrowser | SsoError::Denied(_) => {
                StatusCode::BAD_REQUEST
            }
            _ => StatusCode::UNAUTHORIZED,
        }
    }
}

/// The parts of a discovery document the flow uses.
#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

/// A verified ID token.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub issuer: String,
    pub subject: String,
    /// The email, only when the issuer says it verified it.
    pub verified_email: Option<Email>,
    pub name: Option<String>,
    /// Every claim, for the configuration's claim rules.
    pub claims: Map<String, Value>,
}

/// The token endpoint's answer carries the ID token beside the access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct IdTokenFields {
    id_token: String,
}
impl ExtraTokenFields for IdTokenFields {}

type OidcClient = oauth2::Client<
    BasicErrorResponse,
    StandardTokenResponse<IdTokenFields, BasicTokenType>,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// One configured issuer, with its discovery document and keys cached.
pub struct IssuerClient {
    pub cfg: SsoIssuer,
    secret: String,
    redirect_uri: String,
    http: reqwest::Client,
    discovery: tokio::sync::Mutex<Option<(Arc<Discovery>, Instant)>>,
    jwks: JwksCache,
}

/// Every configured issuer.
pub struct Sso {
    issuers: Vec<Arc<IssuerClient>>,
}

impl std::fmt::Debug for Sso {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<_> = self.issuers.iter().map(|i| &i.cfg.id).collect();
        f.debug_struct("Sso").field("issuers", &ids).finish()
    }
}

impl Sso {
    /// Builds a client per issuer, reading client secrets through `env`. The redirect URI is
    /// `<public_url>/sso/<id>/callback`, so a public URL is required. Every problem is reported.
    pub fn new(
        issuers: &[SsoIssuer],
        public_url: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        let Some(public) = public_url.map(|u| u.trim_end_matches('/')) else {
            return Err(vec![
                "single sign-on needs --public-url (PORTICO_PUBLIC_URL): the issuer sends people back to <public-url>/sso/<id>/callback".into(),
            ]);
        };
        let http = jwks::http_client()
            .map_err(|e| vec![format!("the HTTP client does not start: {e}")])?;
        let mut out = Vec::new();
        for s in issuers {
            let secret = match env(&s.client_secret_env) {
                Some(v) if !v.is_empty() => v,
                _ => {
                    problems.push(format!(
                        "sso {}: the environment variable {} (the client secret) is not set",
                        s.id, s.client_secret_env
                    ));
                    continue;
                }
            };
            out.push(Arc::new(IssuerClient {
                redirect_uri: format!("{public}/sso/{}/callback", s.id),
                cfg: s.clone(),
                secret,
                http: http.clone(),
                discovery: tokio::sync::Mutex::new(None),
                jwks: JwksCache::default(),
            }));
        }
        if problems.is_empty() {
            Ok(Sso { issuers: out })
        } else {
            Err(problems)
        }
    }

    pub fn issuer(&self, id: &str) -> Option<&Arc<IssuerClient>> {
        self.issuers.iter().find(|i| i.cfg.id == id)
    }

    /// `(id, label)` of each issuer, for the sign-in page.
    pub fn buttons(&self) -> Vec<(String, String)> {
        self.issuers
            .iter()
            .map(|i| (i.cfg.id.clone(), i.cfg.label.clone()))
            .collect()
    }
}

fn issuer_error(what: &str, e: impl std::fmt::Display) -> SsoError {
    SsoError::Issuer(format!("{what}: {e}"))
}

impl IssuerClient {
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, SsoError> {
        jwks::get_json(&self.http, url)
            .await
            .map_err(SsoError::Issuer)
    }

    /// The issuer's discovery document, checked: it must name this issuer exactly, and its
    /// endpoints must be https (http only on a loopback issuer).
    async fn discovery(&self) -> Result<Arc<Discovery>, SsoError> {
        // Not held while fetching: a slow issuer must not stall sign-ins that need nothing new.
        if let Some((d, at)) = self.discovery.lock().await.as_ref() {
            if at.elapsed() < DISCOVERY_TTL {
                return Ok(d.clone());
            }
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.cfg.issuer.trim_end_matches('/')
        );
        let d: Discovery = self.get_json(&url).await?;
        if d.issuer != self.cfg.issuer {
            return Err(issuer_error(
                "discovery",
                format!("names issuer {:?}, not {:?}", d.issuer, self.cfg.issuer),
            ));
        }
        let loopback_issuer = self.cfg.issuer.starts_with("http://");
        for (name, url) in [
            ("authorization_endpoint", &d.authorization_endpoint),
            ("token_endpoint", &d.token_endpoint),
            ("jwks_uri", &d.jwks_uri),
        ] {
            let ok = is_issuer_url(url.split('?').next().unwrap_or(""))
                && (url.starts_with("https://") || loopback_issuer);
            if !ok {
                return Err(issuer_error(
                    "discovery",
                    format!("{name} {url:?} is not https"),
                ));
            }
        }
        let d = Arc::new(d);
        *self.discovery.lock().await = Some((d.clone(), Instant::now()));
        Ok(d)
    }

    fn client(&self, d: &Discovery) -> Result<OidcClient, SsoError> {
        let bad = |e| issuer_error("discovery", e);
        // client_secret_basic unless the issuer supports only client_secret_post.
        let auth_type = match &d.token_endpoint_auth_methods_supported {
            Some(m)
                if !m.iter().any(|a| a == "client_secret_basic")
                    && m.iter().any(|a| a == "client_secret_post") =>
            {
                AuthType::RequestBody
            }
            _ => AuthType::BasicAuth,
        };
        Ok(
            oauth2::Client::new(ClientId::new(self.cfg.client_id.clone()))
                .set_client_secret(ClientSecret::new(self.secret.clone()))
                .set_auth_type(auth_type)
                .set_auth_uri(AuthUrl::new(d.authorization_endpoint.clone()).map_err(bad)?)
                .set_token_uri(TokenUrl::new(d.token_endpoint.clone()).map_err(bad)?)
                .set_redirect_uri(RedirectUrl::new(self.redirect_uri.clone()).map_err(bad)?),
        )
    }

    /// Where to send the browser, with a fresh PKCE pair: `(url, verifier)`.
    pub async fn authorization_url(
        &self,
        state: &str,
        nonce: &str,
    ) -> Result<(String, String), SsoError> {
        let d = self.discovery().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = state.to_owned();
        let (url, _) = self
            .client(&d)?
            .authorize_url(move || CsrfToken::new(state))
            .add_scopes(self.cfg.scopes.iter().map(|s| Scope::new(s.clone())))
            .set_pkce_challenge(challenge)
            .add_extra_param("nonce", nonce)
            .url();
        Ok((url.to_string(), verifier.secret().clone()))
    }

    /// Exchanges the code (with the sign-in's PKCE verifier) for the ID token.
    pub async fn exchange(&self, code: &str, verifier: &str) -> Result<String, SsoError> {
        let d = self.discovery().await?;
        let response = self
            .client(&d)?
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()))
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(r) => {
                    SsoError::CodeRefused(r.error().to_string())
                }
                other => issuer_error("token endpoint", other),
            })?;
        Ok(response.extra_fields().id_token.clone())
    }

    /// The key for a token's `kid` from the JWKS its discovery document names.
    async fn key(&self, kid: Option<&str>) -> Result<(Algorithm, DecodingKey), SsoError> {
        let d = self.discovery().await?;
        self.jwks
            .key(&self.http, &d.jwks_uri, kid)
            .await
            .map_err(|e| match e {
                KeyError::Unknown => SsoError::UnknownKey,
                KeyError::Unavailable(why) => SsoError::Issuer(why),
            })
    }

    /// Verifies an ID token for the sign-in that sent `nonce`, at `now` (Unix seconds).
    pub async fn verify(&self, token: &str, nonce: &str, now: u64) -> Result<Identity, SsoError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| SsoError::Malformed)?;
        // Only public-key signatures: an HMAC "key" would be something the client knows, such
        // as the issuer's public key (the classic algorithm confusion).
        if !is_asymmetric(header.alg) {
            return Err(SsoError::WrongAlgorithm);
        }
        let (alg, key) = self.key(header.kid.as_deref()).await?;
        if header.alg != alg {
            return Err(SsoError::WrongAlgorithm);
        }
        let mut v = Validation::new(alg);
        v.set_issuer(&[&self.cfg.issuer]);
        v.set_audience(&[&self.cfg.client_id]);
        v.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        v.leeway = LEEWAY_SECS;
        v.validate_nbf = true;
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &v)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind as K;
                match e.kind() {
                    K::InvalidSignature => SsoError::BadSignature,
                    K::ExpiredSignature => SsoError::Expired,
                    K::ImmatureSignature => SsoError::BadTime,
                    K::InvalidIssuer => SsoError::WrongIssuer,
                    K::InvalidAudience => SsoError::WrongAudience,
                    K::InvalidAlgorithm => SsoError::WrongAlgorithm,
                    K::MissingRequiredClaim(_) | K::InvalidClaimFormat(_) | K::Json(_) => {
                        SsoError::BadClaim("a required claim")
                    }
                    _ => SsoError::Malformed,
                }
            })?
            .claims;
        check_claims(&claims, &self.cfg.client_id, nonce, now)?;
        let verified = claims
            .get("email_verified")
            .is_some_and(|v| v == &Value::Bool(true) || v.as_str() == Some("true"));
        let email = claims
            .get("email")
            .and_then(Value::as_str)
            .and_then(|e| Email::parse(e).ok());
        Ok(Identity {
            issuer: self.cfg.issuer.clone(),
            subject: claims["sub"].as_str().unwrap_or_default().to_owned(),
            verified_email: email.filter(|_| verified),
            name: claims
                .get("name")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|n| !n.is_empty() && n.len() <= 200)
                .map(str::to_owned),
            claims,
        })
    }
}

/// The checks `jsonwebtoken` leaves to the caller: `iat` neither in the future nor old, `azp`
/// when present (required with several audiences), `nonce`, and a usable `sub`.
fn check_claims(
    claims: &Map<String, Value>,
    client_id: &str,
    nonce: &str,
    now: u64,
) -> Result<(), SsoError> {
    let iat = claims
        .get("iat")
        .and_then(Value::as_u64)
        .ok_or(SsoError::BadClaim("iat"))?;
    if iat > now + LEEWAY_SECS || iat + MAX_TOKEN_AGE_SECS < now {
        return Err(SsoError::BadTime);
    }
    let several_audiences = claims
        .get("aud")
        .and_then(Value::as_array)
        .is_some_and(|a| a.len() > 1);
    match claims.get("azp").map(Value::as_str) {
        Some(Some(azp)) if azp == client_id => {}
        Some(_) => return Err(SsoError::WrongAudience),
        None if several_audiences => return Err(SsoError::WrongAudience),
        None => {}
    }
    if claims.get("nonce").and_then(Value::as_str) != Some(nonce) {
        return Err(SsoError::WrongNonce);
    }
    match claims.get("sub").and_then(Value::as_str) {
        Some(s) if !s.is_empty() && s.len() <= 255 => Ok(()),
        _ => Err(SsoError::BadClaim("sub")),
    }
}
