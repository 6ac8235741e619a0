use super::control_plane::http::{Http, HttpSettings};
use super::control_plane::signature::Keyring;
use super::control_plane::ControlPlane;
use super::embed::EmbedVerifier;
use super::limiter::{ClientLimiter, Limits, SignInLimiter};
use super::live::Live;
use super::mail::Mailer;
use super::metrics::Metrics;
use super::password::Passwords;
use super::sso::Sso;
use super::store::{Store, StoreError};
use crate::domain::provider::{ControlPlaneConfig, Driver};
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
    /// Requests each API token may make a minute; more get 429.
    pub api_requests_per_minute: u32,
    /// Provider keys given in the environment: each variable's name and the SHA-256 of the
    /// key it holds (the secret itself is not kept).
    pub provider_keys: Vec<(String, String)>,
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
            api_requests_per_minute: 600,
            provider_keys: Vec::new(),
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
    /// The provider's control plane, when the configuration names one (`driver = "http"`);
    /// otherwise `serve` runs the built-in simulator.
    pub control_plane: Option<Arc<dyn ControlPlane>>,
    /// The secrets the control plane signs its callbacks with; without them every callback
    /// is refused.
    pub callback_keys: Option<Arc<Keyring>>,
    /// Committed changes, fanned out to the open live streams.
    pub live: Arc<Live>,
    /// This process's counters, scraped at `--metrics-addr`.
    pub metrics: Arc<Metrics>,
}

/// Why the portal cannot start with this configuration. `serve` prints it and exits; the
/// tests start through the same checks.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("the embed keys do not load:\n  {}", .0.join("\n  "))]
    EmbedKeys(Vec<String>),
    #[error("single sign-on cannot start:\n  {}", .0.join("\n  "))]
    Sso(Vec<String>),
    #[error("the public URL must be an origin such as https://portal.example.com, not {0}")]
    PublicOrigin(String),
    #[error("invitation emails need the public URL: their links point at the portal")]
    MailWithoutOrigin,
    #[error("invitation emails cannot be sent: {0}")]
    Mail(String),
    #[error(
        "refusing to serve: {0}. Connect with --database-url as a role granted portico_app (it \
         owns nothing and cannot bypass row-level security) and apply migrations with \
         --migration-database-url as the tables' owner; the README's PostgreSQL section shows how"
    )]
    RowSecurity(String),
    #[error("the control plane cannot be reached: {0}")]
    ControlPlane(String),
    #[error("the database cannot be checked")]
    Store(#[from] StoreError),
}

impl AppState {
    /// Builds the application from its configuration: the one start-up path, shared by
    /// `portico serve` and the tests. Every optional part the configuration asks for (embed
    /// keys, single sign-on, invitation email) must load, or the portal does not start; on
    /// PostgreSQL the connection's role must be held by row-level security.
    pub async fn build(
        leptos_options: LeptosOptions,
        store: Store,
        provider: ProviderConfig,
        settings: Settings,
    ) -> Result<AppState, StartupError> {
        if let Some(problem) = store.row_security_problem().await? {
            return Err(StartupError::RowSecurity(problem));
        }
        if let Some(origin) = &settings.public_origin {
            if !crate::domain::provider::is_origin(origin.trim_end_matches('/')) {
                return Err(StartupError::PublicOrigin(origin.clone()));
            }
        }
        let env = |var: &str| std::env::var(var).ok();
        let embed = match &provider.embed {
            Some(cfg) => Some(Arc::new(
                EmbedVerifier::new(cfg, env).map_err(StartupError::EmbedKeys)?,
            )),
            None => None,
        };
        let sso = if provider.sso.is_empty() {
            None
        } else {
            let sso = Sso::new(&provider.sso, settings.public_origin.as_deref(), env)
                .map_err(StartupError::Sso)?;
            Some(Arc::new(sso))
        };
        let mailer = match &settings.smtp {
            None => None,
            Some(_) if settings.public_origin.is_none() => {
                return Err(StartupError::MailWithoutOrigin)
            }
            Some(Smtp { url, from }) => Some(Arc::new(
                Mailer::new(url, from).map_err(StartupError::Mail)?,
            )),
        };
        let (control_plane, callback_keys) = match control_plane(&provider.control_plane, env)
            .map_err(StartupError::ControlPlane)?
        {
            Some((driver, keys)) => (Some(driver), Some(Arc::new(keys))),
            None => (None, None),
        };
        let metrics = Arc::new(Metrics::default());
        let sign_in_limiter = Arc::new(SignInLimiter::new(store.clone(), Limits::default()));
        let sso_starts = Arc::new(ClientLimiter::sso_starts(store.clone()));
        Ok(AppState {
            live: Live::start(store.clone(), metrics.clone()),
            metrics,
            control_plane,
            callback_keys,
            embed,
            sso,
            mailer,
            leptos_options,
            store,
            provider: Arc::new(provider),
            settings: Arc::new(settings),
            sign_in_limiter,
            passwords: Arc::new(Passwords::default()),
            sso_starts,
        })
    }
}

/// The `http` driver, and the secrets its callbacks are verified with.
pub type HttpControlPlane = (Arc<dyn ControlPlane>, Keyring);

/// The `http` driver and the callbacks' secrets, read from the variables the configuration
/// names; `None` for the built-in simulator. An unset or malformed secret stops start-up.
pub fn control_plane(
    cfg: &ControlPlaneConfig,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<HttpControlPlane>, String> {
    if cfg.driver != Driver::Http {
        return Ok(None);
    }
    let keyring = |name: &Option<String>, field: &str| -> Result<Keyring, String> {
        let name = name
            .as_deref()
            .ok_or_else(|| format!("control_plane.{field} is not set"))?;
        let value = env(name).ok_or_else(|| {
            format!("the environment variable {name} (control_plane.{field}) is not set")
        })?;
        Keyring::parse(&value).map_err(|e| format!("{name} (control_plane.{field}): {e}"))
    };
    let secrets = keyring(&cfg.secret_env, "secret_env")?;
    let callbacks = keyring(&cfg.callback_secret_env, "callback_secret_env")?;
    let http = Http::new(HttpSettings {
        base_url: cfg.base_url.clone().unwrap_or_default(),
        secrets,
        timeout: Duration::from_secs(cfg.timeout_seconds.max(1)),
    })?;
    Ok(Some((Arc::new(http), callbacks)))
}
