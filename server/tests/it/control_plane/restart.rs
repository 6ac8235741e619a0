//! Portico killed with SIGKILL after sending a command and before the control plane's
//! callback, then started again: the operation completes exactly once, and the control plane
//! only ever sees the one operation id as its Idempotency-Key.

use super::harness::*;
use super::reference::ReferenceCp;
use app::domain::{Status, TenantId};
use app::server::store::{OpState, Store, TenantScope};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `portico serve` with the demo data, operations going to the control plane in `config`.
fn serve(dir: &Path, config: &Path, port: u16, secrets: &Secrets) -> Child {
    Command::new(env!("CARGO_BIN_EXE_portico"))
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("PORTICO_CONFIG")
        .env(
            "PORTICO_LEPTOS_CONFIG",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../Leptos.toml"),
        )
        .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
        // This server is not asked for pages: no bundle, no hash list beside the binary.
        .env("LEPTOS_HASH_FILES", "false")
        .env(&secrets.commands_env, &secrets.commands)
        .env(&secrets.callbacks_env, &secrets.callbacks)
        .args([
            "serve",
            "--demo",
            "--workers",
            "1",
            "--data-dir",
            "data",
            "--config",
        ])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start portico serve")
}

async fn wait_ready(base: &str) {
    for _ in 0..300 {
        if let Ok(r) = reqwest::get(format!("{base}/readyz")).await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("portico serve did not become ready at {base}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portico_killed_between_command_and_callback_completes_the_operation_once() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = Secrets::new();
    let port = crate::common::unused_port();
    let portal = format!("http://127.0.0.1:{port}");
    // Long enough that the callbacks come after the kill.
    let cp = ReferenceCp::start(
        &portal,
        &secrets,
        &["--mode", "async", "--delay-ms", "3000"],
    )
    .await;
    let config = dir.path().join("provider.toml");
    let toml = format!(
        "{}\n[control_plane]\ndriver = \"http\"\nbase_url = \"{}\"\nsecret_env = \"{}\"\n\
         callback_secret_env = \"{}\"\ntimeout_seconds = 5\npoll_interval_seconds = 2\n",
        app::server::config::DEMO_CONFIG,
        cp.url,
        secrets.commands_env,
        secrets.callbacks_env
    );
    std::fs::write(&config, toml).unwrap();

    let mut first = serve(dir.path(), &config, port, &secrets);
    wait_ready(&portal).await;
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let signed_in = client
        .post(format!("{portal}/api/sign_in"))
        .form(&[("email", "ops@globex.test"), ("password", PW)])
        .send()
        .await
        .unwrap();
    assert!(
        signed_in.status().is_success(),
        "{:?}",
        signed_in.text().await
    );
    let store = Store::connect(&format!(
        "sqlite://{}",
        dir.path().join("data/portico.db").display()
    ))
    .await
    .unwrap();
    let globex = TenantScope::for_tests(TenantId::parse("globex").unwrap());
    let web = store
        .list_instances(&globex)
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.name == "globex-web")
        .unwrap();
    let res = client
        .post(format!("{portal}/api/request_operation"))
        .json(
            &json!({"instance_id": web.id.as_str(), "request": {"operation": "stop"},
                      "idempotency_key": "kill-1"}),
        )
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    let op_id = res.json::<Value>().await.unwrap()["operation_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The moment the control plane has the command, Portico dies without a word.
    tokio::time::timeout(Duration::from_secs(20), async {
        while cp.seen(&op_id).await.0 == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the command reaches the control plane");
    first.kill().expect("SIGKILL");
    first.wait().unwrap();
    let mid = store.get_operation(&globex, &op_id).await.unwrap().unwrap();
    assert!(
        !mid.state.is_finished(),
        "not finished before the callback: {mid:?}"
    );

    let mut second = serve(dir.path(), &config, port, &secrets);
    wait_ready(&portal).await;
    let done = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let op = store.get_operation(&globex, &op_id).await.unwrap().unwrap();
            if op.state.is_finished() {
                return op;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the operation finishes after the restart");
    let _ = second.kill();
    let _ = second.wait();
    assert_eq!(done.state, OpState::Succeeded, "{done:?}");
    let web = store.get_instance(&globex, &web.id).await.unwrap().unwrap();
    assert_eq!(web.status, Status::Stopped);
    // One operation at the control plane, run once, always under the same key.
    let commands = cp.commands().await;
    let mine: Vec<&Value> = commands
        .iter()
        .filter(|c| c["operation_id"] == op_id.as_str())
        .collect();
    assert!(!mine.is_empty());
    assert!(
        mine.iter().all(|c| c["idempotency_key"] == op_id.as_str()),
        "{mine:?}"
    );
    assert_eq!(cp.seen(&op_id).await.1, 1, "{mine:?}");
    assert_eq!(
        commands.len(),
        mine.len(),
        "no other operation was sent: {commands:?}"
    );
    let ends = store
        .list_audit(&globex, &Default::default(), 50)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.operation_id.as_deref() == Some(op_id.as_str()) && e.outcome == "succeeded")
        .count();
    assert_eq!(ends, 1, "completed exactly once");
}
