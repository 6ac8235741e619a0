//! `portico`: config -> telemetry -> store -> migrate (fail hard) -> router -> serve.

use anyhow::{bail, Context};
use app::domain::{Email, ProviderConfig, Role, TenantId};
use app::server::password::Passwords;
use app::server::{auth, config, control_plane, demo, routes, state, store, telemetry, worker};
use axum::serve::ListenerExt;
use clap::Parser;
use cli::{Cli, Command, LogFormat, ProviderKeyCommand, ServeArgs};
use std::path::Path;

mod cli;
use std::time::Duration;

fn main() -> std::process::ExitCode {
    return_large_blocks_to_the_system();
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

/// Each argon2 hash takes ~19 MiB. glibc serves a block that large with mmap, but after the
/// first one is freed it raises that threshold to the freed size, so later blocks come from
/// per-thread arenas that it seldom gives back: a few dozen sign-ins left the idle server at
/// 338 MB. A fixed threshold keeps large blocks mmapped, returned to the system when freed.
fn return_large_blocks_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it runs before any other thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
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
    let Some(command) = &cli.command else {
        return serve(&cli, &cli.serve, provider).await;
    };
    match command {
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
            // The secrets live in the environment `serve` runs in, which may not be this one.
            let env = |var: &str| std::env::var(var).ok();
            if let Err(why) = state::control_plane(&provider.control_plane, env) {
                eprintln!("warning: {why}; `serve` refuses to start until it is");
            }
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
            let ended = store
                .set_password(&user.user_id, Some(&hash), store::now_millis())
                .await?;
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
        Command::ProviderKey { command } => {
            let store = open_store(&cli).await?;
            provider_key(&store, command).await
        }
        Command::Serve(args) => serve(&cli, args, provider).await,
    }
}

/// The provider keys held by the environment variables named: each variable's name and the
/// hash of its key. A named variable that is unset or holds no well-formed key stops the start.
fn provider_keys_from_env(vars: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    use app::domain::api_token::{well_formed, SecretKind};
    let mut out = Vec::new();
    for var in vars.iter().map(|v| v.trim()).filter(|v| !v.is_empty()) {
        let key = std::env::var(var)
            .with_context(|| format!("--provider-key-env names {var}, which is not set"))?;
        if !well_formed(SecretKind::ProviderKey, key.trim()) {
            bail!(
                "{var} does not hold a provider key (ppk_…); make one with `portico provider-key \
                 create --name <name>` or keep the one printed before"
            );
        }
        out.push((var.to_owned(), auth::token_hash(key.trim())));
    }
    Ok(out)
}

async fn provider_key(store: &store::Store, command: &ProviderKeyCommand) -> anyhow::Result<()> {
    match command {
        ProviderKeyCommand::Create { name } => {
            let (key, secret) = app::server::service::provider::create_key(store, name)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            eprintln!(
                "created provider key {:?}; store it now, it is not shown again:",
                key.name
            );
            println!("{secret}");
        }
        ProviderKeyCommand::Generate => {
            println!(
                "{}",
                app::server::service::tokens::new_secret(
                    app::domain::api_token::SecretKind::ProviderKey
                )
            );
        }
        ProviderKeyCommand::List => {
            let keys = store.list_provider_keys().await?;
            if keys.is_empty() {
                println!("no provider keys");
            }
            for k in keys {
                let when = |t: Option<i64>| {
                    t.map_or(
                        "never".to_owned(),
                        app::server::control_plane::contract::rfc3339,
                    )
                };
                let state = match k.revoked_at {
                    Some(t) => format!("revoked {}", when(Some(t))),
                    None => format!("last used {}", when(k.last_used_at)),
                };
                println!("{}\t{state}", k.name);
            }
        }
        ProviderKeyCommand::Revoke { name } => {
            if !store.revoke_provider_key(name, store::now_millis()).await? {
                bail!("no live provider key named {name:?}");
            }
            println!("revoked provider key {name:?}");
        }
    }
    Ok(())
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
    // One clock reading for the tenant, the user and the membership this command creates.
    let now = store::now_millis();
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
            .create_tenant(&tenant, tenant_name.unwrap_or(tenant.as_str()), plan, now)
            .await?;
        println!("created tenant {tenant}");
    }
    let hash = Passwords::default().hash(read_password()?).await?;
    let user = store
        .create_user(&email, name.unwrap_or(email.as_str()), Some(&hash), now)
        .await?;
    store
        .set_membership_as_provider(&tenant, &user, Role::Admin, now)
        .await?;
    println!("created admin {email} in tenant {tenant}");
    Ok(())
}

async fn serve(cli: &Cli, args: &ServeArgs, provider: ProviderConfig) -> anyhow::Result<()> {
    if cli.config.is_none() && !args.demo {
        bail!(
            "no provider configuration: pass --config <file> (PORTICO_CONFIG) with your plans \
             and settings, or --demo (PORTICO_DEMO=true) to try the built-in demo provider with \
             demo accounts whose password is published. `scripts/run` passes --demo"
        );
    }
    if !(0.0..=1.0).contains(&args.sim_failure_rate) {
        bail!("--sim-failure-rate must be between 0 and 1");
    }
    let smtp = match (&args.smtp_url, &args.smtp_from) {
        (None, _) => None,
        (Some(_), None) => bail!("--smtp-url needs --smtp-from, the sender of invitation emails"),
        (Some(url), Some(from)) => Some(state::Smtp {
            url: url.clone(),
            from: from.clone(),
        }),
    };
    let settings = state::Settings {
        smtp,
        session_idle: Duration::from_secs(args.session_idle_minutes.max(1) * 60),
        session_absolute: Duration::from_secs(args.session_max_hours.max(1) * 3600),
        public_origin: args.public_url.clone(),
        behind_tls: args.behind_tls,
        max_body_bytes: args.max_body_bytes,
        trusted_proxies: args.trusted_proxy.clone(),
        api_requests_per_minute: args.api_rate_limit,
        provider_keys: provider_keys_from_env(&args.provider_key_env)?,
    };
    let leptos_options = leptos_options(&args.leptos_config)?;
    let addr = leptos_options.site_addr;
    let store = open_store(cli).await?;
    let state = state::AppState::build(leptos_options, store.clone(), provider, settings).await?;
    if args.demo && demo::seed(&store, &state.provider).await? {
        tracing::info!("loaded demo data");
    }
    // Before the first request: an unknown email's check must cost no more than any other.
    state.passwords.warm_up().await;
    let cp = &state.provider.control_plane;
    let mut worker_settings = worker::WorkerSettings {
        poll_interval: Duration::from_secs(cp.poll_interval_seconds),
        deadline: Duration::from_secs(cp.deadline_minutes.saturating_mul(60)),
        ..worker::WorkerSettings::default()
    };
    let driver: std::sync::Arc<dyn control_plane::ControlPlane> = match &state.control_plane {
        Some(http) => {
            tracing::info!(base_url = ?cp.base_url, "operations go to the provider's control plane");
            // Each request has its own timeout; the worker's is a backstop above it.
            worker_settings.command_timeout = Duration::from_secs(cp.timeout_seconds + 5);
            http.clone()
        }
        None => control_plane::Simulated::new(control_plane::SimulatedSettings {
            step: Duration::from_millis(args.sim_step_ms),
            failure_rate: args.sim_failure_rate,
            hang: args.sim_hang,
        }),
    };
    let (stop_workers, shutdown) = tokio::sync::watch::channel(false);
    let mut workers = Vec::new();
    for _ in 0..args.workers {
        let w = worker::Worker::new(
            store.clone(),
            state.provider.clone(),
            driver.clone(),
            worker_settings.clone(),
        );
        workers.push(tokio::spawn(w.run(shutdown.clone())));
    }
    // Repairs drift against the provider's own list of instances, when one is connected.
    let reconciler = match (&state.control_plane, cp.reconcile_minutes) {
        (Some(http), minutes) if minutes > 0 => Some(tokio::spawn(
            app::server::reconcile::Reconciler::new(
                store.clone(),
                state.provider.clone(),
                http.clone(),
            )
            .run(Duration::from_secs(minutes * 60), shutdown.clone()),
        )),
        _ => None,
    };
    let sweeper = tokio::spawn(auth::sweep_sessions(
        state.clone(),
        Duration::from_secs(15 * 60),
        shutdown.clone(),
    ));
    // Webhooks: deliveries from the queue, and messages past their retention.
    let delivery_settings =
        app::server::webhooks::DeliverySettings::from_config(&state.provider.webhooks)
            .map_err(anyhow::Error::msg)?;
    let deliverer = app::server::webhooks::Deliverer::new(store.clone(), delivery_settings)
        .map_err(anyhow::Error::msg)?
        .with_mailer(state.mailer.clone(), &state.provider.provider.name)
        .wake_on(state.live.committed());
    let deliveries = tokio::spawn(deliverer.run(shutdown.clone()));
    let webhook_pruner = tokio::spawn(app::server::webhooks::prune(
        store.clone(),
        Duration::from_secs(60 * 60),
        shutdown.clone(),
    ));
    // Events past their retention; a client away longer is sent a snapshot.
    let pruner = tokio::spawn(app::server::live::prune(
        store.clone(),
        Duration::from_secs(15 * 60),
        shutdown.clone(),
    ));
    // Metrics on an address of their own (the operator's network), when asked for.
    let metrics = match args.metrics_addr {
        Some(at) => {
            let listener = tokio::net::TcpListener::bind(at)
                .await
                .with_context(|| format!("cannot listen for metrics on {at}"))?;
            tracing::info!(%at, "metrics at http://{at}/metrics");
            let router = app::server::metrics::router(state.clone());
            let mut stop = shutdown.clone();
            Some(tokio::spawn(async move {
                let stopped = async move {
                    let _ = stop.changed().await;
                };
                if let Err(e) = axum::serve(listener, router)
                    .with_graceful_shutdown(stopped)
                    .await
                {
                    tracing::warn!(error = %e, "metrics listener failed");
                }
            }))
        }
        None => None,
    };
    let live = state.live.clone();
    let app = routes::router(state);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?
        // A page goes out in several writes (head, then the streamed body); with Nagle's
        // algorithm each write after the first waits for the client's delayed ACK (40 ms on
        // Linux), which held every page for ~40 ms whatever it cost to render.
        .tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
        });
    tracing::info!(%addr, engine = store.engine(), "Portico is listening on http://{addr}");
    // The peer address feeds the sign-in rate limiter.
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            // Open live streams would never end by themselves, nor let the server stop.
            live.close();
        })
        .await
        .context("server error")?;
    // Let workers finish the operation in hand; an unfinished one is retried after its lease.
    let _ = stop_workers.send(true);
    for w in workers {
        let _ = w.await;
    }
    let _ = sweeper.await;
    let _ = pruner.await;
    let _ = deliveries.await;
    let _ = webhook_pruner.await;
    if let Some(m) = metrics {
        let _ = m.await;
    }
    if let Some(r) = reconciler {
        let _ = r.await;
    }
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
    // Without the file (e.g. launched by `cargo leptos watch` elsewhere), LEPTOS_* variables carry
    // everything; with it, they override it.
    let conf = if path.exists() {
        leptos::config::get_configuration(Some(&path.to_string_lossy()))
    } else {
        leptos::config::get_configuration(None)
    };
    let options = conf
        .with_context(|| format!("cannot read Leptos options from {}", path.display()))?
        .leptos_options;
    // Pages name the bundle's files by the hashes the build listed beside the binary; without
    // that list every page would fail. Say so now rather than on the first request.
    if options.hash_files {
        let exe = std::env::current_exe().context("cannot locate the portico binary")?;
        let list = exe.with_file_name(options.hash_file.as_ref());
        if !list.is_file() {
            bail!(
                "hash-files is on but {} is missing: keep the {} that the build step (scripts/site) \
                 wrote beside the binary, or set LEPTOS_HASH_FILES=false for a site built without hashes",
                list.display(),
                options.hash_file
            );
        }
    }
    Ok(options)
}

async fn shutdown_signal() {
    app::server::shutdown_requested().await;
    tracing::info!("shutdown requested; finishing in-flight requests");
}
