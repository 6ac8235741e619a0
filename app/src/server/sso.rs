//! OpenID Connect single sign-on: the authorization code flow with PKCE (S256), `state` and
//! `nonce`, against issuers the provider configuration names.
//!
//! - `/sso/<id>/start` reads the issuer's discovery document, records the sign-in (state,
//!   nonce, PKCE verifier) in the database, ties it to this browser with a cookie, and sends
//!   the browser to the issuer. Always at the top level: identity providers refuse frames.
//! - `/sso/<id>/callback` takes the recorded sign-in by its `state` (once), checks the browser
//!   cookie, exchanges the code with the `oauth2` crate (its HTTP client follows no
//!   redirects), and verifies the ID token with `jsonwebtoken` against the issuer's JWKS:
//!   the URL comes from discovery, never from the token; keys are cached and fetched again
//!   when an unknown `kid` appears; each key has one algorithm and only asymmetric ones count;
//!   `iss`, `aud` (the client id, `azp` when there are several), `exp`, `nbf`, `iat` and
//!   `nonce` are all checked.
//! - The identity (`iss` + `sub`) becomes a member: of the tenants its linked user belongs to;
//!   else by its verified email, linked at first sign-in; else by a pending invitation; else by
//!   a configured rule. Nobody else gets a session.

use super::auth;
use super::jwks::{self, is_asymmetric, JwksCache, KeyError};
use super::security;
use super::state::AppState;
use super::store::sso::SsoLogin;
use super::store::{now_millis, StoreError, TenantScope};
use crate::domain::provider::{is_issuer_url, SsoIssuer};
use crate::domain::{Email, TenantId, UserId};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
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

/// The cookie that ties a sign-in to the browser that started it.
pub const BROWSER_COOKIE: &str = "__Host-portico_sso";
/// How long a started sign-in waits for its callback.
pub const LOGIN_TTL: Duration = Duration::from_secs(10 * 60);
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

    fn status(&self) -> StatusCode {
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

// ---- GET /sso/<id>/start and /sso/<id>/callback ----

fn browser_cookie(headers: &HeaderMap) -> Option<String> {
    auth::cookie_value(headers, BROWSER_COOKIE)
}

fn set_browser_cookie(token: &str, max_age: u64) -> String {
    // Lax: the issuer sends the browser back with a top-level GET from its own site.
    format!("{BROWSER_COOKIE}={token}; Path=/; Max-Age={max_age}; HttpOnly; Secure; SameSite=Lax")
}

/// The configured issuer `id`.
fn configured_issuer(state: &AppState, id: &str) -> Option<Arc<IssuerClient>> {
    state.sso.as_ref().and_then(|s| s.issuer(id)).cloned()
}

/// The page for an issuer id the configuration does not name.
fn unknown_issuer(state: &AppState, request_id: &str) -> Response {
    page(
        state,
        StatusCode::NOT_FOUND,
        "This sign-in method is not available on this portal.",
        request_id,
    )
}

/// Starts a sign-in at the issuer `id`.
pub async fn start(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: axum::extract::Request,
) -> Response {
    let headers = req.headers();
    let request_id = security::request_id(headers).to_owned();
    let Some(issuer) = configured_issuer(&state, &id) else {
        return unknown_issuer(&state, &request_id);
    };
    // Each start writes a row before anyone has signed in: a client gets only so many.
    let addr = security::client_addr(req.extensions(), headers, &state.settings.trusted_proxies);
    if let Err(wait) = state.sso_starts.hit(addr, Instant::now()) {
        tracing::warn!(%request_id, ?addr, "single sign-on start refused: too many");
        let mut res = page(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            "Too many sign-ins were started from your network. Wait a few minutes, then try again.",
            &request_id,
        );
        if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return res;
    }
    // Identity providers refuse to be framed: continue in the whole window.
    if headers.get("sec-fetch-dest").and_then(|v| v.to_str().ok()) == Some("iframe") {
        let href = format!("/sso/{}/start", issuer.cfg.id);
        return page_with_link(
            &state,
            StatusCode::OK,
            "Signing in continues in the whole window.",
            (&href, &issuer.cfg.label, true),
            &request_id,
        );
    }
    let login_state = auth::new_token();
    let nonce = auth::new_token();
    let (url, verifier) = match issuer.authorization_url(&login_state, &nonce).await {
        Ok(u) => u,
        Err(e) => return refuse(&state, &e, &request_id),
    };
    // One cookie per browser, kept across sign-ins started in several tabs.
    let browser = browser_cookie(headers).unwrap_or_else(auth::new_token);
    let login = SsoLogin {
        state_hash: auth::token_hash(&login_state),
        browser_hash: auth::token_hash(&browser),
        issuer_id: issuer.cfg.id.clone(),
        nonce,
        pkce_verifier: verifier,
        expires_at: now_millis() + i64::try_from(LOGIN_TTL.as_millis()).unwrap_or(i64::MAX),
    };
    if let Err(e) = state.store.begin_sso_login(&login).await {
        tracing::error!(%request_id, error = ?e, "could not record the sign-in");
        return security::internal_error_response(&request_id);
    }
    tracing::info!(%request_id, issuer = %issuer.cfg.issuer, "single sign-on started");
    let mut res = (StatusCode::SEE_OTHER, [(header::LOCATION, url)]).into_response();
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&set_browser_cookie(&browser, LOGIN_TTL.as_secs())) {
        h.insert(header::SET_COOKIE, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

#[derive(Debug, Default, Deserialize)]
pub struct CallbackQuery {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    error: Option<String>,
    /// RFC 9207: the issuer that answered, when it says so; another issuer's answer (a mix-up
    /// attack) is refused.
    #[serde(default)]
    iss: Option<String>,
}

/// Where the issuer sends the browser back. The URL holds a code, so it is never logged (the
/// request span records the path only) and the answer is a redirect or a page of our own.
pub async fn callback(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    query: Result<Query<CallbackQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let request_id = security::request_id(&headers).to_owned();
    let Some(issuer) = configured_issuer(&state, &id) else {
        return unknown_issuer(&state, &request_id);
    };
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let mut res = match finish(&state, &issuer, &headers, q).await {
        Ok(Finished::SignedIn {
            token,
            tenant,
            user,
        }) => {
            tracing::info!(%request_id, %tenant, %user, issuer = %issuer.cfg.issuer, "signed in by single sign-on");
            let mut res =
                (StatusCode::SEE_OTHER, [(header::LOCATION, "/instances")]).into_response();
            if let Ok(v) = HeaderValue::from_str(&auth::session_cookie(&state, &token)) {
                res.headers_mut().append(header::SET_COOKIE, v);
            }
            res
        }
        Ok(Finished::NoAccess(why)) => {
            tracing::info!(%request_id, issuer = %issuer.cfg.issuer, reason = ?why, "single sign-on: no tenant");
            page_with_link(
                &state,
                StatusCode::FORBIDDEN,
                why.message(),
                ("/sign-in", "Back to sign-in", false),
                &request_id,
            )
        }
        Err(Failure::Refused(e)) => {
            tracing::warn!(%request_id, issuer = %issuer.cfg.issuer, reason = %e, "single sign-on refused");
            refuse(&state, &e, &request_id)
        }
        Err(Failure::Store(e)) => {
            tracing::error!(%request_id, error = ?e, "single sign-on failed");
            security::internal_error_response(&request_id)
        }
    };
    // The browser cookie has done its job, whatever the outcome.
    if let Ok(v) = HeaderValue::from_str(&set_browser_cookie("", 0)) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

enum Finished {
    SignedIn {
        token: String,
        tenant: TenantId,
        user: UserId,
    },
    NoAccess(NoAccess),
}

/// Why a verified identity gets no session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoAccess {
    /// No tenant has this person, and no rule or invitation admits them.
    NoTenant(String),
    /// Nothing links the identity to a user, and the issuer did not verify the email.
    Unverified,
    /// The account is disabled.
    Disabled,
    /// The email's account is linked to another identity at this issuer.
    LinkedElsewhere,
    /// The email's account has a password, which must be proved (by signing in with it in
    /// this browser) before an identity is linked to it.
    PasswordFirst,
}

impl NoAccess {
    pub fn message(&self) -> &'static str {
        match self {
            NoAccess::NoTenant(_) => "You signed in, but you have no access to any organisation on this portal. Ask an administrator of your organisation to invite you, then sign in again.",
            NoAccess::Unverified => "You signed in, but your identity provider has not verified your email address, so you have no access to this portal yet. Verify your email address there, or ask an administrator of your organisation for help.",
            NoAccess::Disabled => "You signed in, but your account on this portal is disabled, so you have no access. Contact an administrator of your organisation.",
            NoAccess::LinkedElsewhere => "You signed in, but your email address belongs to an account that is linked to another identity, so you have no access. Contact an administrator of your organisation.",
            NoAccess::PasswordFirst => "Your email address already has an account on this portal with a password. To use this sign-in method from now on, sign in with your password first, then choose this sign-in method again in the same browser.",
        }
    }
}

enum Failure {
    Refused(SsoError),
    Store(StoreError),
}

impl From<SsoError> for Failure {
    fn from(e: SsoError) -> Self {
        Failure::Refused(e)
    }
}
impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

async fn finish(
    state: &AppState,
    issuer: &IssuerClient,
    headers: &HeaderMap,
    q: CallbackQuery,
) -> Result<Finished, Failure> {
    let now = now_millis();
    let login_state = q.state.filter(|s| !s.is_empty() && s.len() <= 200);
    let Some(login_state) = login_state else {
        return Err(SsoError::WrongState.into());
    };
    // Taken, so this state is spent whatever happens next.
    let Some(login) = state
        .store
        .take_sso_login(&auth::token_hash(&login_state), now)
        .await?
    else {
        return Err(SsoError::WrongState.into());
    };
    if login.issuer_id != issuer.cfg.id {
        return Err(SsoError::WrongState.into());
    }
    let browser = browser_cookie(headers).map(|b| auth::token_hash(&b));
    if browser.as_deref() != Some(login.browser_hash.as_str()) {
        return Err(SsoError::WrongBrowser.into());
    }
    if q.iss.as_ref().is_some_and(|iss| *iss != issuer.cfg.issuer) {
        return Err(SsoError::WrongIssuer.into());
    }
    if let Some(error) = q.error {
        let error: String = error
            .chars()
            .filter(char::is_ascii_graphic)
            .take(64)
            .collect();
        return Err(SsoError::Denied(error).into());
    }
    let Some(code) = q.code.filter(|c| !c.is_empty() && c.len() <= 2048) else {
        return Err(SsoError::Denied("no code".into()).into());
    };
    let id_token = issuer.exchange(&code, &login.pkce_verifier).await?;
    let now_secs = u64::try_from(now / 1000).unwrap_or_default();
    let identity = issuer.verify(&id_token, &login.nonce, now_secs).await?;
    // A session in this browser proves the account's password, for linking.
    let signed_in = auth::current_session(state, headers)
        .await?
        .map(|s| s.record.user_id);
    match admit(state, &issuer.cfg, &identity, signed_in.as_ref()).await? {
        Ok((user, tenant)) => {
            let token =
                auth::start_session(state, &user, &tenant, crate::domain::SessionOrigin::Sso)
                    .await?;
            Ok(Finished::SignedIn {
                token,
                tenant,
                user,
            })
        }
        Err(why) => Ok(Finished::NoAccess(why)),
    }
}

/// Where an admitted identity goes in.
enum Entry {
    /// A tenant the user already belongs to.
    Member(TenantId),
    /// A pending invitation: `(tenant, invitation id)`.
    Invitation(TenantId, String),
    /// A configured rule of the issuer.
    Rule(TenantId, crate::domain::Role),
}

/// The user and tenant a verified identity signs in to. An issuer vouches only for the
/// tenants (and email domains) its configuration names, unless it is declared provider-wide:
/// everything below looks only inside those. In this order: a tenant of the user its `iss` +
/// `sub` is linked to; a tenant of the user with its verified email (linked now, which needs
/// that account's password proved by a session in this browser, unless the account has none
/// or only one chosen through an invitation link); a pending invitation for that email; the
/// first configured rule that admits it.
pub async fn admit(
    state: &AppState,
    cfg: &SsoIssuer,
    id: &Identity,
    signed_in: Option<&UserId>,
) -> Result<Result<(UserId, TenantId), NoAccess>, StoreError> {
    let store = &state.store;
    let now = now_millis();
    let served_membership = |memberships: Vec<(TenantId, crate::domain::Role)>| {
        memberships
            .into_iter()
            .map(|(t, _)| t)
            .find(|t| cfg.serves_tenant(t.as_str()))
    };
    let linked = match store.user_by_identity(&id.issuer, &id.subject).await? {
        Some((_, true)) => return Ok(Err(NoAccess::Disabled)),
        Some((u, false)) => Some(u),
        None => None,
    };
    if let Some(u) = &linked {
        if let Some(tenant) = served_membership(store.memberships(u).await?) {
            return Ok(Ok((u.clone(), tenant)));
        }
    }
    // Anything further needs an email the issuer verified and may vouch for.
    let Some(email) = &id.verified_email else {
        return Ok(Err(NoAccess::Unverified));
    };
    if !cfg.vouches_for_email(email.as_str()) {
        return Ok(Err(NoAccess::NoTenant(email.to_string())));
    }
    let existing = match &linked {
        Some(_) => None,
        None => store.user_credentials(email).await?,
    };
    if existing.as_ref().is_some_and(|c| c.disabled) {
        return Ok(Err(NoAccess::Disabled));
    }
    let mut entry = None;
    if let Some(c) = &existing {
        entry = served_membership(store.memberships(&c.user_id).await?).map(Entry::Member);
    }
    if entry.is_none() {
        entry = store
            .invitations_for_email(email.as_str(), now)
            .await?
            .into_iter()
            .find(|(t, _)| cfg.serves_tenant(t.as_str()))
            .map(|(t, i)| Entry::Invitation(t, i));
    }
    if entry.is_none() {
        for r in cfg
            .rules
            .iter()
            .filter(|r| r.admits(email.as_str(), &id.claims))
        {
            if let Ok(t) = TenantId::parse(&r.tenant) {
                if cfg.serves_tenant(t.as_str()) && store.tenant_exists(&t).await? {
                    entry = Some(Entry::Rule(t, r.role));
                    break;
                }
            }
        }
    }
    let Some(entry) = entry else {
        return Ok(Err(NoAccess::NoTenant(email.to_string())));
    };

    let user = match (linked, existing) {
        (Some(u), _) => u,
        (None, Some(c)) => {
            // A password proves more than the issuer's word, except one chosen by whoever held
            // an invitation link: that one is cleared once the email's owner links.
            let proved = signed_in == Some(&c.user_id);
            if c.password_hash.is_some() && !c.password_from_invitation && !proved {
                return Ok(Err(NoAccess::PasswordFirst));
            }
            if !store
                .link_identity(&id.issuer, &id.subject, &c.user_id, now)
                .await?
            {
                return Ok(Err(NoAccess::LinkedElsewhere));
            }
            if c.password_from_invitation {
                store.set_password(&c.user_id, None).await?;
                tracing::info!(user = %c.user_id, "the password chosen through an invitation link is cleared");
            }
            tracing::info!(user = %c.user_id, issuer = %id.issuer, "identity linked by verified email");
            c.user_id
        }
        (None, None) => {
            let name = id.name.as_deref().unwrap_or(email.as_str());
            let u = match store.create_user(email, name, None).await {
                Ok(u) => u,
                // Signed in twice at once: the other sign-in created the user.
                Err(StoreError::Conflict(_)) => match store.user_credentials(email).await? {
                    Some(c) if c.password_hash.is_none() => c.user_id,
                    _ => return Ok(Err(NoAccess::NoTenant(email.to_string()))),
                },
                Err(e) => return Err(e),
            };
            if !store
                .link_identity(&id.issuer, &id.subject, &u, now)
                .await?
                && store
                    .user_by_identity(&id.issuer, &id.subject)
                    .await?
                    .map(|(linked, _)| linked)
                    .as_ref()
                    != Some(&u)
            {
                return Ok(Err(NoAccess::LinkedElsewhere));
            }
            u
        }
    };
    match entry {
        Entry::Member(tenant) => Ok(Ok((user, tenant))),
        Entry::Invitation(tenant, invitation) => {
            let scope = TenantScope::trusted(tenant.clone());
            if !store
                .accept_invitation(&scope, &invitation, &user, now)
                .await?
            {
                // Taken or revoked in the meantime.
                return Ok(Err(NoAccess::NoTenant(email.to_string())));
            }
            tracing::info!(%tenant, %user, "invitation accepted by single sign-on");
            Ok(Ok((user, tenant)))
        }
        Entry::Rule(tenant, role) => {
            let scope = TenantScope::trusted(tenant.clone());
            store.set_membership(&scope, &user, role).await?;
            store
                .record_audit(&super::store::members::join_event(
                    &tenant,
                    &user,
                    email.as_str(),
                    role,
                    &format!("joined by single sign-on, a rule of issuer {}", cfg.id),
                ))
                .await?;
            tracing::info!(%tenant, %user, role = role.as_str(), "member added by a single sign-on rule");
            Ok(Ok((user, tenant)))
        }
    }
}

fn refuse(state: &AppState, e: &SsoError, request_id: &str) -> Response {
    page(state, e.status(), e.message(), request_id)
}

/// A page of one message and a link back to sign-in.
fn page(state: &AppState, status: StatusCode, message: &str, request_id: &str) -> Response {
    page_with_link(
        state,
        status,
        message,
        ("/sign-in", "Back to sign-in", false),
        request_id,
    )
}

/// A page of one message and one link (`top` opens it in the whole window).
fn page_with_link(
    state: &AppState,
    status: StatusCode,
    message: &str,
    (href, text, top): (&str, &str, bool),
    request_id: &str,
) -> Response {
    let target = if top { " target=\"_top\"" } else { "" };
    let link = format!(
        "<p><a class=\"button primary\" href=\"{}\"{target}>{}</a></p>",
        security::escape_html(href),
        security::escape_html(text)
    );
    security::message_page(state, status, message, &link, request_id)
}
