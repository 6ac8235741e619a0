use super::embed::EmbedVerifier;
use super::limiter::{ClientLimiter, SignInLimiter};
use super::mail::Mailer;
use super::password::Passwords;
use super::sso::Sso;
use super::store::Store;
use crate::domain::ProviderConfig;
use axum::extract::FromRef;
use leptos::prelude::LeptosOptions;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// Runtime settings that are not part of the provider configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// A session unused for this long ends.
    pub session_idle: Duration,
    /// A session ends this long after sign-in, however busy.
    pub session_absolute: Duration,
    /// The portal's own origin (`https://portal.example`), when known; otherwise requests are
    /// compared with their Host header.
    pub public_origin: Option<String>,
    /// Served over TLS, directly or by a proxy: adds Strict-Transport-Security.
    pub behind_tls: bool,
    /// Request bodies larger than this are refused with 413.
    pub max_body_bytes: usize,
    /// Reverse proxies whose `X-Forwarded-For` names the client; nobody else's is believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// The SMTP server and sender that email invitations; links need `public_origin`.
    pub smtp: Option<Smtp>,
}

/// Where invitation emails go out.
#[derive(Clone)]
pub struct Smtp {
    /// May hold the password (`smtps://user:password@host`): never printed.
    pub url: String,
    pub from: String,
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smtp")
            .field("url", &crate::domain::secrets::MASK)
            .field("from", &self.from)
            .finish()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            session_idle: Duration::from_secs(30 * 60),
            session_absolute: Duration::from_secs(12 * 60 * 60),
            public_origin: None,
            behind_tls: false,
            max_body_bytes: 256 * 1024,
            trusted_proxies: Vec::new(),
            smtp: None,
        }
    }
}

/// The one state handed to page rendering and to server functions alike.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub store: Store,
    pub provider: Arc<ProviderConfig>,
    pub settings: Arc<Settings>,
    pub sign_in_limiter: Arc<SignInLimiter>,
    /// Every password hash and check, capped to the cores.
    pub passwords: Arc<Passwords>,
    /// Single sign-ons started per client.
    pub sso_starts: Arc<ClientLimiter>,
    /// Present when the provider configuration enables embedding and its keys load.
    pub embed: Option<Arc<EmbedVerifier>>,
    /// Present when the provider configuration names OpenID Connect issuers and their client
    /// secrets and the public URL are set.
    pub sso: Option<Arc<Sso>>,
    /// Present when an SMTP server is configured (and the public URL, which links need).
    pub mailer: Option<Arc<Mailer>>,
}

impl AppState {
    pub fn new(
        leptos_options: LeptosOptions,
        store: Store,
        provider: ProviderConfig,
        settings: Settings,
    ) -> AppState {
        // `serve` refuses to start when the keys do not load; here (tests, tools) a broken
        // configuration only disables /embed, loudly.
        let embed = provider.embed.as_ref().and_then(|cfg| {
            match EmbedVerifier::new(cfg, |var| std::env::var(var).ok()) {
                Ok(v) => Some(Arc::new(v)),
                Err(problems) => {
                    tracing::error!(
                        ?problems,
                        "embed keys do not load; /embed refuses every token"
                    );
                    None
                }
            }
        });
        let sso = (!provider.sso.is_empty())
            .then(|| {
                Sso::new(&provider.sso, settings.public_origin.as_deref(), |var| {
                    std::env::var(var).ok()
                })
                .map_err(|problems| {
                    tracing::error!(?problems, "single sign-on is not available");
                })
                .ok()
            })
            .flatten()
            .map(Arc::new);
        let mailer = settings.smtp.as_ref().and_then(|Smtp { url, from }| {
            if settings.public_origin.is_none() {
                tracing::error!(
                    "invitation emails need the public URL for their links; not sending any"
                );
                return None;
            }
            Mailer::new(url, from)
                .map_err(|why| tracing::error!(%why, "invitation emails are off"))
                .ok()
                .map(Arc::new)
        });
        AppState {
            embed,
            sso,
            mailer,
            leptos_options,
            store,
            provider: Arc::new(provider),
            settings: Arc::new(settings),
            sign_in_limiter: Arc::new(SignInLimiter::default()),
            passwords: Arc::new(Passwords::default()),
            sso_starts: Arc::new(ClientLimiter::sso_starts()),
        }
    }
}
