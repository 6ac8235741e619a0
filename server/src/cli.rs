//! The command line: options every subcommand shares, and each subcommand's own.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    args_conflicts_with_subcommands = true,
    name = "portico",
    version,
    about = "Portico: the self-serve customer portal for SaaS deployments"
)]
pub struct Cli {
    /// Provider configuration (TOML). `serve` needs one, or `--demo`.
    #[arg(long, env = "PORTICO_CONFIG", global = true)]
    pub config: Option<PathBuf>,

    /// `sqlite://path/to/file.db` or `postgres://…`. Default: an SQLite file in the data folder.
    #[arg(long, env = "DATABASE_URL", global = true)]
    pub database_url: Option<String>,

    /// On PostgreSQL, the tables' owner, used only to apply migrations: the portal itself
    /// connects (`--database-url`) as a role that owns nothing and cannot bypass row-level
    /// security. `migrate` uses it instead of `--database-url`.
    #[arg(long, env = "PORTICO_MIGRATION_DATABASE_URL", global = true)]
    pub migration_database_url: Option<String>,

    /// Where the default SQLite database lives.
    #[arg(long, env = "PORTICO_DATA_DIR", default_value = "data", global = true)]
    pub data_dir: PathBuf,

    /// Log format.
    #[arg(
        long,
        env = "PORTICO_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Option<Command>,

    /// `portico` alone serves, with these options.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// What only `serve` reads.
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Load the demo tenants and users, whose password is published (with no `--config`, on
    /// the built-in demo provider). For trying Portico out, never in production.
    #[arg(long, env = "PORTICO_DEMO")]
    pub demo: bool,

    /// Leptos runtime options file (site root, address); LEPTOS_* variables override it.
    #[arg(long, env = "PORTICO_LEPTOS_CONFIG", default_value = "Leptos.toml")]
    pub leptos_config: PathBuf,

    /// Minutes a session may stay unused.
    #[arg(long, env = "PORTICO_SESSION_IDLE_MINUTES", default_value_t = 30)]
    pub session_idle_minutes: u64,

    /// Hours a session lasts at most.
    #[arg(long, env = "PORTICO_SESSION_MAX_HOURS", default_value_t = 12)]
    pub session_max_hours: u64,

    /// Workers executing operations in this process (0: only enqueue; another process runs them).
    #[arg(long, env = "PORTICO_WORKERS", default_value_t = 2)]
    pub workers: usize,

    /// Simulated control plane: milliseconds each command takes.
    #[arg(long, env = "PORTICO_SIM_STEP_MS", default_value_t = 3000)]
    pub sim_step_ms: u64,

    /// Simulated control plane: fraction (0 to 1) of commands that fail and are retried.
    #[arg(long, env = "PORTICO_SIM_FAILURE_RATE", default_value_t = 0.0)]
    pub sim_failure_rate: f64,

    /// Simulated control plane: never answer (for testing leases and timeouts).
    #[arg(long, env = "PORTICO_SIM_HANG")]
    pub sim_hang: bool,

    /// The portal's public origin (e.g. https://portal.example.com). State-changing requests
    /// must come from it (or an origin the provider configuration allows); without it, from
    /// the Host the browser addressed.
    #[arg(long, env = "PORTICO_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// An SMTP server for invitation emails: smtp://host[:port] (plain),
    /// smtp://host:587?tls=required (STARTTLS) or smtps://host:465, with user:password@
    /// before the host if it wants them. Needs --smtp-from and --public-url. Without it, admins
    /// copy invitation links themselves.
    #[arg(long, env = "PORTICO_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// The sender of invitation emails, e.g. "Acme Cloud <portal@acme.example>".
    #[arg(long, env = "PORTICO_SMTP_FROM")]
    pub smtp_from: Option<String>,

    /// Served over TLS (directly or by a proxy): send Strict-Transport-Security.
    #[arg(long, env = "PORTICO_BEHIND_TLS")]
    pub behind_tls: bool,

    /// Largest request body accepted, in bytes; larger ones get 413.
    #[arg(
        long,
        env = "PORTICO_MAX_BODY_BYTES",
        default_value_t = 256 * 1024)]
    pub max_body_bytes: usize,

    /// A reverse proxy whose X-Forwarded-For header names the client (repeat, or
    /// comma-separated in the variable). Without one, the peer address is the client.
    #[arg(long, env = "PORTICO_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxy: Vec<std::net::IpAddr>,

    /// Requests each API token may make a minute on /api/v1; more get 429 with Retry-After.
    #[arg(long, env = "PORTICO_API_RATE_LIMIT", default_value_t = 600,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub api_rate_limit: u32,

    /// An environment variable holding a provider key (ppk_…) for /provider/v1, besides those
    /// made with `portico provider-key create` (repeat, or comma-separated). The key is named
    /// after the variable in the audit log.
    #[arg(long, env = "PORTICO_PROVIDER_KEY_ENV", value_delimiter = ',')]
    pub provider_key_env: Vec<String>,

    /// Serve Prometheus metrics (GET /metrics) on this address, e.g. 127.0.0.1:9464: an
    /// address of its own, for the operator's network only. Without it, no metrics are served.
    #[arg(long, env = "PORTICO_METRICS_ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
}

#[derive(Subcommand, Debug)]
pub enum ProviderKeyCommand {
    /// Create a key and print it: it is not shown again (only its hash is stored).
    Create {
        #[arg(long)]
        name: String,
    },
    /// Print a new key without storing it, for an environment variable that
    /// --provider-key-env names.
    Generate,
    /// The keys, with when each was last used.
    List,
    /// Revoke a key: refused from its next request on.
    Revoke {
        #[arg(long)]
        name: String,
    },
}

#[derive(Copy, Clone, Debug, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Migrate the database and serve the portal (the default).
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Check the provider configuration and exit (non-zero when invalid).
    CheckConfig,
    /// Create a tenant (if missing) and its first admin. The password is read from
    /// PORTICO_ADMIN_PASSWORD or, if unset, from the first line of standard input.
    CreateAdmin {
        #[arg(long)]
        tenant: String,
        /// Display name of the tenant, when it is created.
        #[arg(long)]
        tenant_name: Option<String>,
        /// Plan of the tenant, when it is created.
        #[arg(long)]
        plan: Option<String>,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// Set a user's password and sign them out everywhere. The password is read like
    /// create-admin's.
    SetPassword {
        #[arg(long)]
        email: String,
    },
    /// Provider keys for the provider API (/provider/v1): create (the key is printed once),
    /// list, revoke.
    ProviderKey {
        #[command(subcommand)]
        command: ProviderKeyCommand,
    },
    /// Print an embed token signed with a private key, as the provider's backend would mint
    /// it (issuer and audience from the configuration's [embed]). For trying embedding out
    /// and for tests; a provider's backend signs its own.
    MintEmbedToken {
        /// The `kid` of a key in [embed] keys; its algorithm applies.
        #[arg(long)]
        kid: String,
        /// PEM private key (PKCS#8) for EdDSA, ES256 and RS256; for HS256, a file holding the
        /// secret.
        #[arg(long)]
        key_file: PathBuf,
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "viewer")]
        role: String,
        /// The provider's id for the user; defaults to the email.
        #[arg(long)]
        sub: Option<String>,
        /// Display name for a member created just in time.
        #[arg(long)]
        name: Option<String>,
        /// Lifetime in seconds (at most 300).
        #[arg(long, default_value_t = 120)]
        ttl_secs: u64,
    },
}
