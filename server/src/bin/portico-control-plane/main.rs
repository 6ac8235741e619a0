//! `portico-control-plane`: the reference control plane, speaking control-plane API v1 to
//! Portico. It keeps instances in memory (and in `--state-file`), takes signed commands,
//! answers 200 (sync) or 202 and signed callbacks (async), and has `/_admin` routes that
//! tests use to inject faults, read the command log and change instances "in the console".
//!
//! It only ever listens on loopback: the admin routes take no credentials.

mod callbacks;
mod faults;
mod model;
mod persist;
mod routes;
mod runner;

use anyhow::{bail, Context};
use app::server::control_plane::signature::Keyring;
use clap::Parser;
use runner::{Mode, Shared};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Mutex;

#[derive(Debug, Parser)]
#[command(
    name = "portico-control-plane",
    version,
    about = "The reference control plane for Portico (control-plane API v1), for tests and demos"
)]
struct Args {
    /// Where to listen; a loopback address only.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// The portal's public URL, where callbacks go; without it none are sent (Portico polls).
    #[arg(long)]
    portal_url: Option<String>,
    /// The environment variable holding the whsec_ secret(s) Portico signs commands with.
    #[arg(long, default_value = "PORTICO_CP_SECRET")]
    secret_env: String,
    /// The environment variable holding the whsec_ secret(s) callbacks are signed with.
    #[arg(long, default_value = "PORTICO_CP_CALLBACK_SECRET")]
    callback_secret_env: String,
    /// sync: answer 200 with the result; async: answer 202 and report by callback.
    #[arg(long, value_enum, default_value_t = Mode::Async)]
    mode: Mode,
    /// How long an operation takes, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    delay_ms: u64,
    /// How many in_progress callbacks come before the final one.
    #[arg(long, default_value_t = 2)]
    progress_steps: u32,
    /// The share of operations that end as failed (spread deterministically), 0 to 1.
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    failure_rate: f64,
    /// A JSON file keeping instances, operations and the command log across restarts.
    #[arg(long)]
    state_file: Option<PathBuf>,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let rate: f64 = s.parse().map_err(|_| format!("{s} is not a number"))?;
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!("{s} is not between 0 and 1"))
    }
}

/// The address to listen on, which must be loopback.
fn listen_addr(s: &str) -> anyhow::Result<SocketAddr> {
    let addr: SocketAddr = match s.strip_prefix("localhost:") {
        Some(port) => format!("127.0.0.1:{port}").parse(),
        None => s.parse(),
    }
    .with_context(|| format!("--listen {s} is not an address such as 127.0.0.1:8080"))?;
    if !addr.ip().is_loopback() {
        bail!(
            "--listen {s}: the reference control plane listens on loopback only (its /_admin \
             routes take no credentials)"
        );
    }
    Ok(addr)
}

fn keyring(var: &str, what: &str) -> anyhow::Result<Option<Keyring>> {
    match std::env::var(var) {
        Ok(value) => Keyring::parse(&value)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("{var} ({what}): {e}")),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(e) => bail!("{var} ({what}): {e}"),
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .compact()
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("portico-control-plane: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("portico-control-plane: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let addr = listen_addr(&args.listen)?;
    let keys = keyring(&args.secret_env, "the secret Portico signs commands with")?.with_context(
        || {
            format!(
                "{} is not set: it holds the whsec_ secret Portico signs commands with",
                args.secret_env
            )
        },
    )?;
    let callback_keys = keyring(&args.callback_secret_env, "the callback secret")?;
    if let Some(url) = &args.portal_url {
        reqwest::Url::parse(url).with_context(|| format!("--portal-url {url} is not a URL"))?;
        if callback_keys.is_none() {
            bail!(
                "--portal-url is set but {} is not: callbacks must be signed",
                args.callback_secret_env
            );
        }
    }
    let state = match &args.state_file {
        Some(path) => persist::load(path)?,
        None => model::State::default(),
    };
    let notifier = callbacks::Notifier::new(args.portal_url.clone(), callback_keys)?;
    let cp: runner::Cp = Box::leak(Box::new(Shared {
        mode: args.mode,
        settings: model::Settings {
            delay_ms: args.delay_ms,
            failure_rate: args.failure_rate,
        },
        progress_steps: args.progress_steps,
        keys,
        state: Mutex::new(state),
        state_file: args.state_file.clone(),
        faults: Mutex::new(faults::FaultQueue::default()),
        notifier,
    }));

    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{local}")?;
        out.flush()?;
    }
    tracing::info!(
        mode = ?args.mode,
        delay_ms = args.delay_ms,
        progress_steps = args.progress_steps,
        failure_rate = args.failure_rate,
        callbacks = args.portal_url.as_deref().unwrap_or("off"),
        "reference control plane started"
    );
    runner::resume(cp);
    axum::serve(listener, routes::router(cp))
        .with_graceful_shutdown(app::server::shutdown_requested())
        .await
        .context("the server stopped")?;
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses_are_accepted() {
        assert!(listen_addr("127.0.0.1:0").is_ok());
        assert!(listen_addr("[::1]:9000").is_ok());
        assert_eq!(listen_addr("localhost:9000").unwrap().port(), 9000);
        assert!(listen_addr("0.0.0.0:9000").is_err());
        assert!(listen_addr("192.168.1.4:80").is_err());
        assert!(listen_addr("nowhere").is_err());
    }

    #[test]
    fn the_failure_rate_is_a_share() {
        assert_eq!(parse_rate("0.25"), Ok(0.25));
        assert!(parse_rate("1.5").is_err());
        assert!(parse_rate("-0.1").is_err());
        assert!(parse_rate("half").is_err());
    }

    #[test]
    fn the_command_line_has_its_documented_defaults() {
        let args = Args::parse_from(["portico-control-plane"]);
        assert_eq!(args.listen, "127.0.0.1:0");
        assert_eq!(args.secret_env, "PORTICO_CP_SECRET");
        assert_eq!(args.callback_secret_env, "PORTICO_CP_CALLBACK_SECRET");
        assert_eq!(args.mode, Mode::Async);
        assert_eq!((args.delay_ms, args.progress_steps), (1000, 2));
        assert_eq!(args.failure_rate, 0.0);
        let sync = Args::parse_from(["x", "--mode", "sync", "--failure-rate", "0.5"]);
        assert_eq!((sync.mode, sync.failure_rate), (Mode::Sync, 0.5));
    }
}
