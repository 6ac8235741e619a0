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

mod handlers;
mod oidc;

pub use handlers::{callback, start, CallbackQuery, BROWSER_COOKIE, LOGIN_TTL};
pub use oidc::*;
