//! The `portico` command line: configuration checks and the first admin of a real deployment.

use std::process::Command;

fn portico(dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_portico"));
    c.current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("PORTICO_CONFIG")
        .env("PORTICO_DATA_DIR", dir.join("data"));
    c
}

#[test]
fn check_config_accepts_the_demo_and_names_file_and_line_of_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let ok = portico(dir.path()).arg("check-config").output().unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("valid (3 plans"));

    let bad = dir.path().join("acme.toml");
    let demo = app::server::config::DEMO_CONFIG.replacen("quota = 10", "quota = 0", 1);
    std::fs::write(&bad, &demo).unwrap();
    let line = demo.lines().position(|l| l == "quota = 0").unwrap() + 1;
    let out = portico(dir.path())
        .args(["check-config", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "acme.toml:{line}: plans.1.quota: must be at least 1"
        )),
        "{err}"
    );
}

#[test]
fn create_admin_makes_a_first_admin_who_can_sign_in_and_no_demo_data() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("provider.toml");
    std::fs::write(&cfg, app::server::config::DEMO_CONFIG).unwrap();
    let out = portico(dir.path())
        .args([
            "create-admin",
            "--tenant",
            "globex",
            "--tenant-name",
            "Globex",
            "--plan",
            "pro",
            "--email",
            "it@globex.example",
            "--config",
        ])
        .arg(&cfg)
        .env("PORTICO_ADMIN_PASSWORD", "a-long-enough-password")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let short = portico(dir.path())
        .args([
            "create-admin",
            "--tenant",
            "globex",
            "--email",
            "two@globex.example",
            "--config",
        ])
        .arg(&cfg)
        .env("PORTICO_ADMIN_PASSWORD", "short")
        .output()
        .unwrap();
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 12 characters"));

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let url = format!("sqlite://{}", dir.path().join("data/portico.db").display());
        let store = app::server::store::Store::connect(&url).await.unwrap();
        assert_eq!(
            store.count_tenants().await.unwrap(),
            1,
            "a configured deployment gets no demo tenants"
        );
        let email = app::domain::Email::parse("it@globex.example").unwrap();
        let creds = store
            .user_credentials(&email)
            .await
            .unwrap()
            .expect("admin exists");
        assert!(
            app::server::auth::verify_password(
                "a-long-enough-password".into(),
                creds.password_hash
            )
            .await
        );
        let m = store.memberships(&creds.user_id).await.unwrap();
        assert_eq!(m[0].1, app::domain::Role::Admin);
    });
}
