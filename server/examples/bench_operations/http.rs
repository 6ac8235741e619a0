//! The `http` driver's half of the benchmark: the reference control plane as a child process
//! and, for its callbacks, the portal's real router on a loopback port.

use app::server::control_plane::http::{Http, HttpSettings};
use app::server::control_plane::signature::{Keyring, Secret};
use app::server::control_plane::ControlPlane;
use app::server::routes;
use app::server::state::{AppState, Settings};
use app::server::store::Store;
use leptos::config::LeptosOptions;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

const BIN: &str = "portico-control-plane";
const SECRET_ENV: &str = "PORTICO_BENCH_CP_SECRET";
const CALLBACK_SECRET_ENV: &str = "PORTICO_BENCH_CP_CALLBACK_SECRET";

/// `portico-control-plane` beside this example: the example runs from
/// `target/<profile>/examples/`, the workspace's binaries sit in `target/<profile>/`.
pub fn control_plane_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(|examples| examples.parent())
        .ok_or_else(|| {
            anyhow::anyhow!("cannot tell the target directory from {}", exe.display())
        })?;
    let bin = profile_dir.join(format!("{BIN}{}", std::env::consts::EXE_SUFFIX));
    if !bin.is_file() {
        let release = if cfg!(debug_assertions) {
            ""
        } else {
            " --release"
        };
        anyhow::bail!(
            "{} is missing: the http rows need the reference control plane built with the same \
             profile and target directory as this example. Build it first:\n\n    \
             cargo build{release} -p portico --bins\n",
            bin.display()
        );
    }
    Ok(bin)
}

/// How the control plane answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `200` with the result.
    Sync,
    /// `202`, then a signed callback to the portal.
    Async,
}

/// A running reference control plane, the driver that talks to it and, in async mode, the
/// portal serving its callbacks. Everything stops when dropped.
pub struct Reference {
    pub driver: Arc<dyn ControlPlane>,
    _child: tokio::process::Child,
    portal: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Reference {
    fn drop(&mut self) {
        if let Some(portal) = self.portal.take() {
            portal.abort();
        }
    }
}

impl Reference {
    /// Starts `bin` with zero delay; in async mode with no progress steps and callbacks to the
    /// portal's router (on `store`), served here.
    pub async fn start(
        bin: &PathBuf,
        mode: Mode,
        store: &Store,
        provider: &app::domain::ProviderConfig,
    ) -> anyhow::Result<Reference> {
        let commands = Secret::generate();
        let callbacks = Secret::generate();
        let mut cmd = tokio::process::Command::new(bin);
        cmd.args(["--listen", "127.0.0.1:0", "--delay-ms", "0"])
            .args(["--secret-env", SECRET_ENV])
            .args(["--callback-secret-env", CALLBACK_SECRET_ENV])
            .env(SECRET_ENV, &commands)
            .env(CALLBACK_SECRET_ENV, &callbacks)
            // Its per-request info lines would drown the table.
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let portal = match mode {
            Mode::Sync => {
                cmd.args(["--mode", "sync"]);
                None
            }
            Mode::Async => {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                let url = format!("http://{}", listener.local_addr()?);
                cmd.args(["--mode", "async", "--progress-steps", "0"])
                    .args(["--portal-url", &url]);
                // The same start-up path as `portico serve` (and its checks, row-level security
                // on PostgreSQL included); the demo provider runs the simulator, so the
                // callbacks' secret is handed over here rather than through the environment.
                let mut state = AppState::build(
                    leptos_options(),
                    store.clone(),
                    provider.clone(),
                    Settings::default(),
                )
                .await
                .map_err(|e| anyhow::anyhow!("the portal does not start: {e}"))?;
                state.callback_keys = Some(Arc::new(
                    Keyring::parse(&callbacks).map_err(anyhow::Error::msg)?,
                ));
                let app = routes::router(state)
                    .into_make_service_with_connect_info::<std::net::SocketAddr>();
                Some(tokio::spawn(async move {
                    let _ = axum::serve(listener, app).await;
                }))
            }
        };
        let mut child = cmd
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", bin.display()))?;
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let url = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(url) = line.strip_prefix("listening on ") {
                    return Ok(url.trim().to_owned());
                }
            }
            anyhow::bail!("{BIN} exited before it listened (see its message above)")
        })
        .await
        .map_err(|_| anyhow::anyhow!("{BIN} did not listen within 30 s"))??;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let driver = Http::new(HttpSettings {
            base_url: url,
            secrets: Keyring::parse(&commands).map_err(anyhow::Error::msg)?,
            timeout: Duration::from_secs(10),
        })
        .map_err(anyhow::Error::msg)?;
        Ok(Reference {
            driver: Arc::new(driver),
            _child: child,
            portal,
        })
    }
}

fn leptos_options() -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("portico")
        .site_root("target/site")
        .site_pkg_dir("pkg")
        .build()
}
