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
fn the_http_control_plane_is_checked_and_serve_needs_its_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("acme.toml");
    let with = |base_url: &str| {
        format!(
            "{}\n[control_plane]\ndriver = \"http\"\nbase_url = \"{base_url}\"\n\
             secret_env = \"ACME_CP_SECRET\"\ncallback_secret_env = \"ACME_CP_CALLBACK_SECRET\"\n",
            app::server::config::DEMO_CONFIG
        )
    };
    // Commands carry secret parameters: plain HTTP is refused except to loopback.
    std::fs::write(&file, with("http://cp.acme.example/v1")).unwrap();
    let out = portico(dir.path())
        .args(["check-config", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("control_plane.base_url"), "{err}");

    std::fs::write(&file, with("https://cp.acme.example/v1")).unwrap();
    let out = portico(dir.path())
        .args(["check-config", "--config"])
        .arg(&file)
        .env_remove("ACME_CP_SECRET")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: the environment variable ACME_CP_SECRET"),
        "{err}"
    );

    let out = portico(dir.path())
        .args(["serve", "--config"])
        .arg(&file)
        .env_remove("ACME_CP_SECRET")
        .env(
            "ACME_CP_CALLBACK_SECRET",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        )
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ACME_CP_SECRET (control_plane.secret_env) is not set"),
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
        assert!(app::server::password::Passwords::default()
            .verify("a-long-enough-password".into(), creds.password_hash)
            .await
            .unwrap());
        let m = store.memberships(&creds.user_id).await.unwrap();
        assert_eq!(m[0].1, app::domain::Role::Admin);
    });
}

#[test]
fn set_password_changes_it_and_signs_the_user_out_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    // The demo data (no --config) has admin@globex.test.
    let migrate = portico(dir.path()).arg("migrate").output().unwrap();
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let url = format!("sqlite://{}", dir.path().join("data/portico.db").display());
    let email = app::domain::Email::parse("it@acme.example").unwrap();
    let user = rt.block_on(async {
        let store = app::server::store::Store::connect(&url).await.unwrap();
        let now = app::server::store::now_millis();
        let user = store.create_user(&email, "IT", None, now).await.unwrap();
        let tenant = app::domain::TenantId::parse("acme").unwrap();
        store
            .create_tenant(&tenant, "Acme", "pro", now)
            .await
            .unwrap();
        store
            .set_membership(
                &app::server::store::TenantScope::for_tests(tenant.clone()),
                &user,
                app::domain::Role::Admin,
                now,
            )
            .await
            .unwrap();
        store
            .create_session(&app::server::store::NewSession {
                session_id: "live".into(),
                user_id: user.clone(),
                tenant_id: tenant,
                origin: app::domain::SessionOrigin::Password,
                now,
                expires_at: now + 60_000,
            })
            .await
            .unwrap();
        store.close().await;
        user
    });
    let out = portico(dir.path())
        .args(["set-password", "--email", "it@acme.example"])
        .env("PORTICO_ADMIN_PASSWORD", "another-long-password")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 session(s) ended"));
    rt.block_on(async {
        let store = app::server::store::Store::connect(&url).await.unwrap();
        let now = app::server::store::now_millis();
        assert_eq!(
            store.find_session("live", now, now - 1000).await.unwrap(),
            None
        );
        let creds = store.user_credentials(&email).await.unwrap().unwrap();
        assert_eq!(creds.user_id, user);
        assert!(app::server::password::Passwords::default()
            .verify("another-long-password".into(), creds.password_hash)
            .await
            .unwrap());
    });
    let unknown = portico(dir.path())
        .args(["set-password", "--email", "nobody@acme.example"])
        .env("PORTICO_ADMIN_PASSWORD", "another-long-password")
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no user nobody@acme.example"));
}

#[test]
fn serve_without_a_configuration_or_the_demo_flag_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = portico(dir.path())
        .arg("serve")
        .env_remove("PORTICO_DEMO")
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no provider configuration"), "{err}");
    assert!(err.contains("--config") && err.contains("--demo"), "{err}");
    // Nothing was created: no database, so no demo accounts with a published password.
    assert!(!dir.path().join("data").exists());
}

#[test]
fn serve_refuses_to_start_when_the_bundle_hash_list_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    // Were the check missing, the unusable database would stop it instead of serving on.
    let out = portico(dir.path())
        .args(["serve", "--demo", "--database-url", "nosuchdb://nowhere"])
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .env("LEPTOS_HASH_FILES", "true")
        .env("LEPTOS_HASH_FILE_NAME", "no-such-hash-list.txt")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no-such-hash-list.txt is missing") && err.contains("LEPTOS_HASH_FILES=false"),
        "{err}"
    );
}

#[test]
fn a_flag_of_one_subcommand_is_refused_by_another() {
    let dir = tempfile::tempdir().unwrap();
    let out = portico(dir.path())
        .args(["migrate", "--sim-hang"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "migrate accepted --sim-hang");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--sim-hang"), "{err}");
    // Nothing was migrated: the command line was refused before any work.
    assert!(!dir.path().join("data").exists());

    let help = portico(dir.path())
        .args(["serve", "--help"])
        .output()
        .unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--sim-hang"));
}

#[test]
fn provider_keys_are_printed_once_listed_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| portico(dir.path()).args(args).output().unwrap();
    let out = run(&["migrate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["provider-key", "create", "--name", "billing"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secret = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        app::domain::api_token::well_formed(
            app::domain::api_token::SecretKind::ProviderKey,
            &secret
        ),
        "{secret}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not shown again"));
    let out = run(&["provider-key", "create", "--name", "billing"]);
    assert!(!out.status.success(), "a name is taken once");
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));

    let out = run(&["provider-key", "list"]);
    let list = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(list.contains("billing\tlast used never"), "{list}");
    assert!(!list.contains(&secret));

    assert!(run(&["provider-key", "revoke", "--name", "billing"])
        .status
        .success());
    let again = run(&["provider-key", "revoke", "--name", "billing"]);
    assert!(!again.status.success());
    let list = String::from_utf8_lossy(&run(&["provider-key", "list"]).stdout).into_owned();
    assert!(list.contains("billing\trevoked"), "{list}");

    let out = run(&["provider-key", "generate"]);
    let generated = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(app::domain::api_token::well_formed(
        app::domain::api_token::SecretKind::ProviderKey,
        &generated
    ));
}
