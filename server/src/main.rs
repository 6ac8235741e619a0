//! `portico`: config -> telemetry -> store -> migrate (fail hard) -> router -> serve.

use anyhow::{bail, Context};
use app::domain::{Email, ProviderConfig, Role, TenantId};
use app::server::password::Passwords;
use app::server::{auth, config, control_plane, demo, routes, state, store, telemetry, worker};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "portico",
    version,
    about = "Portico: the self-serve customer portal for SaaS deployments"
)]
struct Cli {
    /// Provider configuration (TOML). `serve` needs one, or `--demo`.
    #[arg(long, env = "PORTICO_CONFIG", global = true)]
    config: Option<PathBuf>,

    /// `sqlite://path/to/file.db` or `postgres://…`. Default: an SQLite file in the data folder.
    #[arg(long, env = "DATABASE_URL", global = true)]
    database_url: Option<String>,

    /// On PostgreSQL, the tables' owner, used only to apply migrations: the portal itself
    /// connects (`--database-url`) as a role that owns nothing and cannot bypass row-level
    /// security. `migrate` uses it instead of `--database-url`.
    #[arg(long, env = "PORTICO_MIGRATION_DATABASE_URL", global = true)]
    migration_database_url: Option<String>,

    /// Where the default SQLite database lives.
    #[arg(long, env = "PORTICO_DATA_DIR", default_value = "data", global = true)]
    data_dir: PathBuf,

    /// Load the demo tenants and users, whose password is published (with no `--config`, on
    /// the built-in demo provider). For trying Portico out, never in production.
    #[arg(long, env = "PORTICO_DEMO", global = true)]
    demo: bool,

    /// Log format.
    #[arg(
        long,
        env = "PORTICO_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    log_format: LogFormat,

    /// Leptos runtime options file (site root, address); LEPTOS_* variables override it.
    #[arg(
        long,
        env = "PORTICO_LEPTOS_CONFIG",
        default_value = "Leptos.toml",
        global = true
    )]
    leptos_config: PathBuf,

    /// Minutes a session may stay unused.
    #[arg(
        long,
        env = "PORTICO_SESSION_IDLE_MINUTES",
        default_value_t = 30,
        global = true
    )]
    session_idle_minutes: u64,

    /// Hours a session lasts at most.
    #[arg(
        long,
        env = "PORTICO_SESSION_MAX_HOURS",
        default_value_t = 12,
        global = true
    )]
    session_max_hours: u64,

    /// Workers executing operations in this process (0: only enqueue; another process runs them).
    #[arg(long, env = "PORTICO_WORKERS", default_value_t = 2, global = true)]
    workers: usize,

    /// Simulated control plane: milliseconds each command takes.
    #[arg(
        long,
        env = "PORTICO_SIM_STEP_MS",
        default_value_t = 3000,
        global = true
    )]
    sim_step_ms: u64,

    /// Simulated control plane: fraction (0 to 1) of commands that fail and are retried.
    #[arg(
        long,
        env = "PORTICO_SIM_FAILURE_RATE",
        default_value_t = 0.0,
        global = true
    )]
    sim_failure_rate: f64,

    /// Simulated control plane: never answer (for testing leases and timeouts).
    #[arg(long, env = "PORTICO_SIM_HANG", global = true)]
    sim_hang: bool,

    /// The portal's public origin (e.g. https://portal.example.com). State-changing requests
    /// must come from it (or an origin the provider configuration allows); without it, from
    /// the Host the browser addressed.
    #[arg(long, env = "PORTICO_PUBLIC_URL", global = true)]
    public_url: Option<String>,

    /// An SMTP server for invitation emails: smtp://host[:port] (plain),
    /// smtp://host:587?tls=required (STARTTLS) or smtps://host:465, with user:password@
    /// before the host if it wants them. Needs --smtp-from and --public-url. Without it, admins
    /// copy invitation links themselves.
    #[arg(long, env = "PORTICO_SMTP_URL", global = true, hide_env_values = true)]
    smtp_url: Option<String>,

    /// The sender of invitation emails, e.g. "Acme Cloud <portal@acme.example>".
    #[arg(long, env = "PORTICO_SMTP_FROM", global = true)]
    smtp_from: Option<String>,

    /// Served over TLS (directly or by a proxy): send Strict-Transport-Security.
    #[arg(long, env = "PORTICO_BEHIND_TLS", global = true)]
    behind_tls: bool,

    /// Largest request body accepted, in bytes; larger ones get 413.
    #[arg(
        long,
        env = "PORTICO_MAX_BODY_BYTES",
        default_value_t = 256 * 1024,
        global = true
    )]
    max_body_bytes: usize,

    /// A reverse proxy whose X-Forwarded-For header names the client (repeat, or
    /// comma-separated in the variable). Without one, the peer address is the client.
    #[arg(
        long,
        env = "PORTICO_TRUSTED_PROXIES",
        value_delimiter = ',',
        global = true
    )]
    trusted_proxy: Vec<std::net::IpAddr>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Migrate the database and serve the portal (the default).
    Serve,
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

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    telemetry::init(matches!(cli.log_format, LogFormat::Json));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("portico: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("portico: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn load_provider(cli: &Cli) -> anyhow::Result<ProviderConfig> {
    match &cli.config {
        Some(path) => Ok(config::load(path)?),
        None => Ok(config::demo()),
    }
}

fn database_url(cli: &Cli) -> anyhow::Result<String> {
    match &cli.database_url {
        Some(url) => Ok(url.clone()),
        None => {
            std::fs::create_dir_all(&cli.data_dir)
                .with_context(|| format!("cannot create data folder {}", cli.data_dir.display()))?;
            Ok(format!(
                "sqlite://{}",
                cli.data_dir.join("portico.db").display()
            ))
        }
    }
}

async fn connect(url: &str) -> anyhow::Result<store::Store> {
    store::Store::connect(url)
        .await
        .with_context(|| format!("cannot open the {} database", engine_of(url)))
}

/// Applies migrations as `--migration-database-url` when given, then opens the portal's own
/// connection, which applies whatever is still missing (nothing, after the owner's run).
async fn open_store(cli: &Cli) -> anyhow::Result<store::Store> {
    if let Some(owner_url) = &cli.migration_database_url {
        let owner = connect(owner_url).await?;
        let migrated = owner.migrate().await;
        owner.close().await;
        migrated.context("database migration failed (as --migration-database-url)")?;
    }
    let store = connect(&database_url(cli)?).await?;
    store.migrate().await.with_context(|| {
        if store.engine() == "postgres" && cli.migration_database_url.is_none() {
            "database migration failed; on PostgreSQL the portal's role may not create tables: \
             give the tables' owner as --migration-database-url"
        } else {
            "database migration failed"
        }
    })?;
    Ok(store)
}

fn engine_of(url: &str) -> &'static str {
    if url.starts_with("postgres") {
        "PostgreSQL"
    } else {
        "SQLite"
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let provider = load_provider(&cli)?;
    match cli.command.as_ref().unwrap_or(&Command::Serve) {
        Command::CheckConfig => {
            let name = cli
                .config
                .as_deref()
                .map_or(config::DEMO_CONFIG_NAME.into(), |p| p.display().to_string());
            println!(
                "{name}: valid ({} plans, {} environments)",
                provider.plans.len(),
                provider.environments.len()
            );
            Ok(())
        }
        Command::Migrate => {
            let url = match &cli.migration_database_url {
                Some(url) => url.clone(),
                None => database_url(&cli)?,
            };
            let store = connect(&url).await?;
            store.migrate().await.context("database migration failed")?;
            println!("migrations applied ({})", store.engine());
            Ok(())
        }
        Command::CreateAdmin {
            tenant,
            tenant_name,
            plan,
            email,
            name,
        } => {
            let store = open_store(&cli).await?;
            create_admin(
                &store,
                &provider,
                tenant,
                tenant_name.as_deref(),
                plan.as_deref(),
                email,
                name.as_deref(),
            )
            .await
        }
        Command::SetPassword { email } => {
            let store = open_store(&cli).await?;
            let email = Email::parse(email).context("--email")?;
            let user = store
                .user_credentials(&email)
                .await?
                .with_context(|| format!("no user {email}"))?;
            let hash = Passwords::default().hash(read_password()?).await?;
            let ended = store.set_password(&user.user_id, Some(&hash)).await?;
            println!("password of {email} changed; {ended} session(s) ended");
            Ok(())
        }
        Command::MintEmbedToken {
            kid,
            key_file,
            tenant,
            email,
            role,
            sub,
            name,
            ttl_secs,
        } => {
            let embed = provider
                .embed
                .as_ref()
                .context("the configuration has no [embed] section")?;
            let key = embed
                .keys
                .iter()
                .find(|k| &k.kid == kid)
                .with_context(|| format!("no key with kid {kid:?} in [embed] keys"))?;
            if *ttl_secs > app::server::embed::MAX_LIFETIME_SECS {
                bail!(
                    "--ttl-secs may be at most {}",
                    app::server::embed::MAX_LIFETIME_SECS
                );
            }
            let secret = std::fs::read(key_file)
                .with_context(|| format!("cannot read {}", key_file.display()))?;
            let now = u64::try_from(store::now_millis() / 1000).unwrap_or_default();
            let claims = app::server::embed::EmbedClaims {
                iss: embed.issuer.clone(),
                aud: embed.audience.clone(),
                sub: sub.clone().unwrap_or_else(|| email.clone()),
                email: email.clone(),
                tenant: tenant.clone(),
                role: role.clone(),
                iat: now,
                exp: now + ttl_secs,
                jti: store::new_id(),
                name: name.clone(),
            };
            let token = app::server::embed::mint(key.algorithm, kid, &secret, &claims)
                .context("cannot sign with this key file")?;
            println!("{token}");
            Ok(())
        }
        Command::Serve => serve(&cli, provider).await,
    }
}

async fn create_admin(
    store: &store::Store,
    provider: &ProviderConfig,
    tenant: &str,
    tenant_name: Option<&str>,
    plan: Option<&str>,
    email: &str,
    name: Option<&str>,
) -> anyhow::Result<()> {
    let tenant = TenantId::parse(tenant).context("--tenant")?;
    let email = Email::parse(email).context("--email")?;
    if !store.tenant_exists(&tenant).await? {
        let plan =
            plan.context("the tenant does not exist yet: give --plan (and --tenant-name)")?;
        if provider.plan(plan).is_none() {
            let known: Vec<_> = provider.plans.iter().map(|p| p.id.as_str()).collect();
            bail!(
                "unknown plan {plan:?}; the configuration has: {}",
                known.join(", ")
            );
        }
        store
            .create_tenant(&tenant, tenant_name.unwrap_or(tenant.as_str()), plan)
            .await?;
        println!("created tenant {tenant}");
    }
    let hash = Passwords::default().hash(read_password()?).await?;
    let user = store
        .create_user(&email, name.unwrap_or(email.as_str()), Some(&hash))
        .await?;
    store
        .set_membership_as_provider(&tenant, &user, Role::Admin)
        .await?;
    println!("created admin {email} in tenant {tenant}");
    Ok(())
}

async fn serve(cli: &Cli, provider: ProviderConfig) -> anyhow::Result<()> {
    if cli.config.is_none() && !cli.demo {
        bail!(
            "no provider configuration: pass --config <file> (PORTICO_CONFIG) with your plans \
             and settings, or --demo (PORTICO_DEMO=true) to try the built-in demo provider with \
             demo accounts whose password is published. `scripts/run` passes --demo"
        );
    }
    let leptos_options = leptos_options(&cli.leptos_config)?;
    let addr = leptos_options.site_addr;
    if let Some(embed) = &provider.embed {
        if let Err(problems) =
            app::server::embed::EmbedVerifier::new(embed, |var| std::env::var(var).ok())
        {
            bail!("the embed keys do not load:\n  {}", problems.join("\n  "));
        }
    }
    if !provider.sso.is_empty() {
        if let Err(problems) =
            app::server::sso::Sso::new(&provider.sso, cli.public_url.as_deref(), |var| {
                std::env::var(var).ok()
            })
        {
            bail!("single sign-on cannot start:\n  {}", problems.join("\n  "));
        }
    }
    let store = open_store(cli).await?;
    if let Some(problem) = store.row_security_problem().await? {
        bail!(
            "refusing to serve: {problem}. Connect with --database-url as a role granted \
             portico_app (it owns nothing and cannot bypass row-level security) and apply \
             migrations with --migration-database-url as the tables' owner; the README's \
             PostgreSQL section shows how"
        );
    }
    if cli.demo && demo::seed(&store, &provider).await? {
        tracing::info!("loaded demo data");
    }
    if let Some(url) = &cli.public_url {
        if !app::domain::config::is_origin(url.trim_end_matches('/')) {
            bail!("--public-url must be an origin such as https://portal.example.com, not {url}");
        }
    }
    let smtp = match (&cli.smtp_url, &cli.smtp_from) {
        (None, _) => None,
        (Some(_), None) => bail!("--smtp-url needs --smtp-from, the sender of invitation emails"),
        (Some(_), Some(_)) if cli.public_url.is_none() => {
            bail!("--smtp-url needs --public-url: invitation emails link to the portal")
        }
        (Some(url), Some(from)) => {
            if let Err(why) = app::server::mail::Mailer::new(url, from) {
                bail!("invitation emails cannot be sent: {why}");
            }
            Some(state::Smtp {
                url: url.clone(),
                from: from.clone(),
            })
        }
    };
    let settings = state::Settings {
        smtp,
        session_idle: Duration::from_secs(cli.session_idle_minutes.max(1) * 60),
        session_absolute: Duration::from_secs(cli.session_max_hours.max(1) * 3600),
        public_origin: cli.public_url.clone(),
        behind_tls: cli.behind_tls,
        max_body_bytes: cli.max_body_bytes,
        trusted_proxies: cli.trusted_proxy.clone(),
    };
    let state = state::AppState::new(leptos_options, store.clone(), provider, settings);
    // Before the first request: an unknown email's check must cost no more than any other.
    state.passwords.warm_up().await;
    if !(0.0..=1.0).contains(&cli.sim_failure_rate) {
        bail!("--sim-failure-rate must be between 0 and 1");
    }
    let driver = control_plane::Simulated::new(control_plane::SimulatedSettings {
        step: Duration::from_millis(cli.sim_step_ms),
        failure_rate: cli.sim_failure_rate,
        hang: cli.sim_hang,
    });
    let (stop_workers, shutdown) = tokio::sync::watch::channel(false);
    let mut workers = Vec::new();
    for _ in 0..cli.workers {
        let w = worker::Worker::new(
            store.clone(),
            state.provider.clone(),
            driver.clone(),
            worker::WorkerSettings::default(),
        );
        workers.push(tokio::spawn(w.run(shutdown.clone())));
    }
    let sweeper = tokio::spawn(auth::sweep_sessions(
        state.clone(),
        Duration::from_secs(15 * 60),
        shutdown.clone(),
    ));
    let app = routes::router(state);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(%addr, engine = store.engine(), "Portico is listening on http://{addr}");
    // The peer address feeds the sign-in rate limiter.
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("server error")?;
    // Let workers finish the operation in hand; an unfinished one is retried after its lease.
    let _ = stop_workers.send(true);
    for w in workers {
        let _ = w.await;
    }
    let _ = sweeper.await;
    store.close().await;
    tracing::info!("shut down cleanly");
    Ok(())
}

/// A new password from PORTICO_ADMIN_PASSWORD or, if unset, the first line of standard input.
fn read_password() -> anyhow::Result<String> {
    let password = match std::env::var("PORTICO_ADMIN_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("reading the password from standard input")?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    if password.chars().count() < 12 {
        bail!("the password must be at least 12 characters");
    }
    Ok(password)
}

fn leptos_options(path: &Path) -> anyhow::Result<leptos::config::LeptosOptions> {
    // Without the file (e.g. launched by cargo-leptos elsewhere), LEPTOS_* variables carry
    // everything; with it, they override it.
    let conf = if path.exists() {
        leptos::config::get_configuration(Some(&path.to_string_lossy()))
    } else {
        leptos::config::get_configuration(None)
    };
    Ok(conf
        .with_context(|| format!("cannot read Leptos options from {}", path.display()))?
        .leptos_options)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}
