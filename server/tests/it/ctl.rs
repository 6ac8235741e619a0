//! `portico-ctl` end to end against a running portal: log in with a token, stop an instance
//! with `--wait`, a refusal exits non-zero with the policy's reason, `-o json` parses, and
//! not found and unreachable have exit codes of their own.

use crate::common::{instance_named, unused_port, Engine, TestApp};
use app::domain::Status;
use app::server::control_plane::{Simulated, SimulatedSettings};
use app::server::worker::{Worker, WorkerSettings};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

struct Ctl {
    credentials: PathBuf,
}

impl Ctl {
    /// Runs `portico-ctl args…` off the runtime (the portal under test serves on it).
    async fn run(&self, args: &[&str], token: Option<&str>) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_portico-ctl"));
        cmd.args(args)
            .env("PORTICO_CREDENTIALS", &self.credentials)
            .env_remove("PORTICO_TOKEN");
        if let Some(t) = token {
            cmd.env("PORTICO_TOKEN", t);
        }
        tokio::task::spawn_blocking(move || cmd.output().expect("portico-ctl runs"))
            .await
            .unwrap()
    }
}

fn say(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A worker executing operations with the simulator, slowly enough to show progress, until the
/// test ends.
fn start_worker(app: &TestApp) {
    let w = Worker::new(
        app.db.store.clone(),
        app.state.provider.clone(),
        Simulated::new(SimulatedSettings {
            step: Duration::from_millis(300),
            failure_rate: 0.0,
            hang: false,
        }),
        WorkerSettings {
            base_backoff: Duration::ZERO,
            ..WorkerSettings::default()
        },
    );
    tokio::spawn(async move {
        loop {
            if !w.run_once().await.unwrap_or(false) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_scripts_the_portal_with_portico_ctl() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let url = app.serve().await;
    start_worker(&app);
    let dir = tempfile::tempdir().unwrap();
    let ctl = Ctl {
        credentials: dir.path().join("portico").join("credentials.json"),
    };
    let operator = app.api_token("globex", "operator").await;

    // Before login there is nothing to act with.
    let out = ctl.run(&["instances", "list"], None).await;
    assert_eq!(out.status.code(), Some(7), "{}", say(&out));
    assert!(say(&out).contains("portico-ctl login"), "{}", say(&out));

    // A token that does not work is not stored.
    let out = ctl
        .run(&["login", "--url", &url], Some("ptk_not-a-real-token"))
        .await;
    assert_eq!(out.status.code(), Some(3), "{}", say(&out));
    assert!(!ctl.credentials.exists());

    let out = ctl.run(&["login", "--url", &url], Some(&operator)).await;
    assert!(out.status.success(), "{}", say(&out));
    assert_eq!(mode(&ctl.credentials), 0o600);

    let out = ctl.run(&["instances", "list", "-o", "json"], None).await;
    assert!(out.status.success(), "{}", say(&out));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("-o json is JSON");
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"globex-web"), "{names:?}");
    assert!(names.iter().all(|n| n.starts_with("globex")), "{names:?}");

    let out = ctl.run(&["instances", "list"], None).await;
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.contains("globex-web"), "{table}");

    // Stop and follow it to its end.
    let out = ctl
        .run(&["stop", "globex-web", "--wait", "--timeout", "60"], None)
        .await;
    assert!(out.status.success(), "{}", say(&out));
    let progress = String::from_utf8_lossy(&out.stderr);
    assert!(progress.contains("stop"), "{progress}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("succeeded"),
        "{}",
        say(&out)
    );
    assert_eq!(
        instance_named(&app, "globex", "globex-web").await.status,
        Status::Stopped
    );

    // The Pro plan enables no delete: refused, with the policy's own words.
    let out = ctl
        .run(&["delete", "globex-web", "--confirm", "globex-web"], None)
        .await;
    assert_eq!(out.status.code(), Some(3), "{}", say(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("plan does not include"),
        "{}",
        say(&out)
    );

    // The operation as JSON, and the audit line that names the token.
    let out = ctl
        .run(
            &[
                "audit",
                "--instance",
                "globex-web",
                "-o",
                "json",
                "--limit",
                "5",
            ],
            None,
        )
        .await;
    assert!(out.status.success(), "{}", say(&out));
    let lines: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        lines
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["operation"] == "stop"
                && l["outcome"] == "requested"
                && l["actor"]
                    .as_str()
                    .is_some_and(|a| a.starts_with("token:operator token"))),
        "{lines}"
    );
    let out = ctl
        .run(&["instances", "get", "globex-web", "-o", "json"], None)
        .await;
    assert!(out.status.success(), "{}", say(&out));
    let detail: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(detail["status"], "stopped");

    let out = ctl
        .run(&["instances", "get", "no-such-instance"], None)
        .await;
    assert_eq!(out.status.code(), Some(4), "{}", say(&out));

    // A viewer's token is refused by its role.
    let viewer = app.api_token("globex", "viewer").await;
    let viewer_ctl = Ctl {
        credentials: dir.path().join("viewer.json"),
    };
    let out = viewer_ctl
        .run(&["login", "--url", &url], Some(&viewer))
        .await;
    assert!(out.status.success(), "{}", say(&out));
    let out = viewer_ctl.run(&["start", "globex-web"], None).await;
    assert_eq!(out.status.code(), Some(3), "{}", say(&out));

    // The provider's tenant commands, with a provider key.
    let key = app::server::service::provider::create_key(&app.db.store, "ops")
        .await
        .unwrap()
        .1;
    let provider_ctl = Ctl {
        credentials: dir.path().join("provider.json"),
    };
    let out = provider_ctl
        .run(&["login", "--url", &url], Some(&key))
        .await;
    assert!(out.status.success(), "{}", say(&out));
    let out = provider_ctl
        .run(
            &[
                "tenants", "create", "newco", "--name", "NewCo", "--plan", "free", "-o", "json",
            ],
            None,
        )
        .await;
    assert!(out.status.success(), "{}", say(&out));
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(created["plan"], "free");
    let out = provider_ctl
        .run(&["tenants", "suspend", "newco"], None)
        .await;
    assert!(out.status.success(), "{}", say(&out));
    let out = provider_ctl.run(&["tenants", "list"], None).await;
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("newco") && l.contains("suspended")),
        "{table}"
    );
    let out = provider_ctl
        .run(
            &["tenants", "set-plan", "newco", "--plan", "platinum"],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(3), "{}", say(&out));
    // A tenant token is no provider key.
    let out = ctl.run(&["tenants", "list"], None).await;
    assert_eq!(out.status.code(), Some(3), "{}", say(&out));

    // Nobody listening: unreachable.
    std::fs::write(
        &ctl.credentials,
        serde_json::json!({"url": format!("http://127.0.0.1:{}", unused_port()), "token": operator})
            .to_string(),
    )
    .unwrap();
    let out = ctl.run(&["instances", "list"], None).await;
    assert_eq!(out.status.code(), Some(5), "{}", say(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unreachable"),
        "{}",
        say(&out)
    );
}
