//! Tenant members: admins invite by link, change roles and remove people; the last admin
//! stays; every change is audited; the invited join with the role they were given.

use crate::common;

use common::{Engine, TestApp};

const PW: &str = app::server::demo::DEMO_PASSWORD;
const NEW_PW: &str = "a-long-new-password";

async fn invite(app: &TestApp, admin: &str, email: &str, role: &str) -> String {
    let (token, answer) = app.invite(admin, email, role).await;
    // No SMTP server in these tests: the admin sends the link.
    assert_eq!(answer["email"], "not-configured");
    token
}

async fn accept(app: &TestApp, token: &str, name: &str, password: &str) -> common::Reply {
    app.call(
        None,
        "accept_invitation",
        &[
            ("token", token),
            ("display_name", name),
            ("password", password),
        ],
    )
    .await
}

async fn members(app: &TestApp, admin: &str) -> serde_json::Value {
    let res = app.call(Some(admin), "list_members", &[]).await;
    assert_eq!(res.status, 200, "{}", res.body);
    res.json()
}

fn user_id_of(list: &serde_json::Value, email: &str) -> String {
    list["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == email)
        .unwrap_or_else(|| panic!("{email} is not a member: {list}"))["user_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn audit_operations(app: &TestApp, admin: &str) -> Vec<String> {
    let res = app
        .call(
            Some(admin),
            "audit_log",
            &[
                ("instance_id", ""),
                ("operation", ""),
                ("user", ""),
                ("outcome", ""),
            ],
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    res.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["operation"].as_str().map(str::to_owned))
        .collect()
}

async fn an_invited_person_joins_with_the_role_they_were_given(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let admin = app.sign_in("admin@globex.test", PW).await;
    let token = invite(&app, &admin, "nia@partner.test", "operator").await;
    let pending = members(&app, &admin).await;
    assert_eq!(pending["invitations"][0]["email"], "nia@partner.test");
    assert_eq!(pending["invitations"][0]["role"], "operator");

    let info = app
        .call(None, "invitation_info", &[("token", &token)])
        .await;
    assert_eq!(info.status, 200, "{}", info.body);
    let info = info.json();
    assert_eq!(info["tenant_name"], "Globex");

    // A new account needs a name and a long enough password.
    let short = accept(&app, &token, "Nia New", "short").await;
    assert_eq!(short.status, 422, "{}", short.body);
    let res = accept(&app, &token, "Nia New", NEW_PW).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let cookie = res.session_cookie().expect("accepting signs in");
    let me = app.call(Some(&cookie), "current_user", &[]).await.json();
    assert_eq!(me["tenant_name"], "Globex");
    assert_eq!(me["role"], "operator");
    assert_eq!(me["display_name"], "Nia New");
    // And she can sign in with that password later.
    app.sign_in("nia@partner.test", NEW_PW).await;

    let after = members(&app, &admin).await;
    assert!(after["invitations"].as_array().unwrap().is_empty());
    user_id_of(&after, "nia@partner.test");
    let ops = audit_operations(&app, &admin).await;
    assert!(ops.contains(&"member-invite".to_owned()), "{ops:?}");
    assert!(ops.contains(&"member-join".to_owned()), "{ops:?}");
}

async fn an_existing_account_joins_with_its_own_password(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let admin = app.sign_in("admin@globex.test", PW).await;
    let token = invite(&app, &admin, "admin@initech.test", "viewer").await;
    // Whoever holds the link (the inviting admin too) is not told the email has an account.
    let info = app
        .call(None, "invitation_info", &[("token", &token)])
        .await
        .json();
    assert!(info.get("has_account").is_none(), "{info}");
    assert!(!info.to_string().contains("account"), "{info}");
    let wrong = accept(&app, &token, "", "not-the-password").await;
    assert_eq!(wrong.status, 422, "{}", wrong.body);
    assert!(wrong.body.contains("password"), "{}", wrong.body);
    assert!(wrong.session_cookie().is_none());
    let res = accept(&app, &token, "", PW).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let me = app
        .call(Some(&res.session_cookie().unwrap()), "current_user", &[])
        .await
        .json();
    assert_eq!(me["tenant_name"], "Globex");
    assert_eq!(me["role"], "viewer");
}

async fn two_acceptances_at_once_give_one_account_and_no_server_error(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let admin = app.sign_in("admin@globex.test", PW).await;
    let token = invite(&app, &admin, "twice@partner.test", "viewer").await;
    let (a, b) = tokio::join!(
        accept(&app, &token, "First", NEW_PW),
        accept(&app, &token, "Second", NEW_PW)
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses[0], 200, "{} / {}", a.body, b.body);
    assert!(
        (400..500).contains(&statuses[1]),
        "the other is told the link is used: {} / {}",
        a.body,
        b.body
    );
}

async fn an_invitation_links_token_never_reaches_the_log(engine: Engine) {
    let logs = common::CapturedLogs::global();
    let app = TestApp::spawn(engine).await;
    let admin = app.sign_in("admin@globex.test", PW).await;
    let token = invite(&app, &admin, "logged@partner.test", "viewer").await;
    let page = app.page(None, &format!("/invite/{token}")).await;
    assert_eq!(page.status, 200);
    let text = logs.text();
    assert!(text.contains("/invite/[redacted]"), "the request is logged");
    assert!(!text.contains(&token), "the token is not");
}

async fn used_revoked_and_made_up_links_are_not_found(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let admin = app.sign_in("admin@globex.test", PW).await;
    let used = invite(&app, &admin, "one@partner.test", "viewer").await;
    assert_eq!(accept(&app, &used, "One", NEW_PW).await.status, 200);
    let revoked = invite(&app, &admin, "two@partner.test", "viewer").await;
    let id = members(&app, &admin).await["invitations"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .call(Some(&admin), "revoke_invitation", &[("invitation_id", &id)])
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    // Inviting the same email again replaces the earlier link.
    let first = invite(&app, &admin, "three@partner.test", "viewer").await;
    let second = invite(&app, &admin, "three@partner.test", "operator").await;
    for token in [
        used.as_str(),
        revoked.as_str(),
        first.as_str(),
        "made-up-token",
    ] {
        let info = app.call(None, "invitation_info", &[("token", token)]).await;
        assert_eq!(info.status, 404, "{token}: {}", info.body);
        assert_eq!(accept(&app, token, "X", NEW_PW).await.status, 404);
    }
    assert_eq!(accept(&app, &second, "Three", NEW_PW).await.status, 200);
    // sign_in asserts the 200 itself.
    app.sign_in("three@partner.test", NEW_PW).await;
}

async fn the_last_admin_can_be_neither_demoted_nor_removed(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let admin = app.sign_in("admin@globex.test", PW).await;
    let list = members(&app, &admin).await;
    let me = user_id_of(&list, "admin@globex.test");
    let ops = user_id_of(&list, "ops@globex.test");
    for (f, args) in [
        (
            "change_member_role",
            vec![("user_id", me.as_str()), ("role", "viewer")],
        ),
        ("remove_member", vec![("user_id", me.as_str())]),
    ] {
        let res = app.call(Some(&admin), f, &args).await;
        assert_eq!(res.status, 403, "{f}: {}", res.body);
        assert!(res.body.contains("at least one admin"), "{}", res.body);
    }
    // With a second admin, the first may step down.
    let res = app
        .call(
            Some(&admin),
            "change_member_role",
            &[("user_id", &ops), ("role", "admin")],
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let res = app
        .call(
            Some(&admin),
            "change_member_role",
            &[("user_id", &me), ("role", "viewer")],
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    // The change applies to the running session at once.
    let now = app.call(Some(&admin), "current_user", &[]).await.json();
    assert_eq!(now["role"], "viewer");
    assert_eq!(
        app.call(Some(&admin), "list_members", &[]).await.status,
        403
    );
    let ops_cookie = app.sign_in("ops@globex.test", PW).await;
    let events = audit_operations(&app, &ops_cookie).await;
    assert_eq!(
        events.iter().filter(|e| *e == "member-role").count(),
        2,
        "{events:?}"
    );
}

async fn a_removed_member_is_signed_out_at_once(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let admin = app.sign_in("admin@globex.test", PW).await;
    let viewer = app.sign_in("viewer@globex.test", PW).await;
    assert_eq!(
        app.call(Some(&viewer), "current_user", &[]).await.status,
        200
    );
    let id = user_id_of(&members(&app, &admin).await, "viewer@globex.test");
    let res = app
        .call(Some(&admin), "remove_member", &[("user_id", &id)])
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(
        app.call(Some(&viewer), "current_user", &[]).await.status,
        401
    );
    let res = app
        .call(
            None,
            "sign_in",
            &[("email", "viewer@globex.test"), ("password", PW)],
        )
        .await;
    assert_eq!(res.status, 403, "{}", res.body);
    assert!(audit_operations(&app, &admin)
        .await
        .contains(&"member-remove".to_owned()));
}

async fn another_tenants_members_cannot_be_touched(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let globex = app.sign_in("admin@globex.test", PW).await;
    let umbrella = app.sign_in("admin@umbrella.test", PW).await;
    let target = user_id_of(&members(&app, &umbrella).await, "admin@umbrella.test");
    for (f, args) in [
        (
            "change_member_role",
            vec![("user_id", target.as_str()), ("role", "viewer")],
        ),
        ("remove_member", vec![("user_id", target.as_str())]),
    ] {
        assert_eq!(app.call(Some(&globex), f, &args).await.status, 404, "{f}");
    }
    let list = members(&app, &globex).await.to_string();
    assert!(!list.contains("umbrella"), "{list}");
}

// ---- invitation emails, through a real SMTP server (end2end/smtp/sink.mjs) ----

const PUBLIC: &str = "https://portal.acme.example";

/// The SMTP server, and the messages it has received, one JSON object per line.
pub(crate) struct Sink {
    _node: tokio::process::Child,
    pub(crate) port: u16,
    pub(crate) lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

pub(crate) async fn sink() -> Sink {
    use tokio::io::AsyncBufReadExt;
    let mut node = tokio::process::Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../end2end/smtp/sink.mjs"
        ))
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs end2end/smtp/sink.mjs (scripts/test installs its packages)");
    let mut lines = tokio::io::BufReader::new(node.stdout.take().unwrap()).lines();
    let ready = lines
        .next_line()
        .await
        .unwrap()
        .expect("the SMTP sink starts");
    let port = ready
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("not a ready line: {ready}"));
    Sink {
        _node: node,
        port,
        lines,
    }
}

async fn mailing_app(engine: Engine, smtp_url: String) -> TestApp {
    let settings = app::server::state::Settings {
        public_origin: Some(PUBLIC.into()),
        smtp: Some(app::server::state::Smtp {
            url: smtp_url,
            from: "Acme Cloud <portal@acme.example>".into(),
        }),
        ..Default::default()
    };
    TestApp::spawn_custom(engine, settings, app::server::config::demo()).await
}

async fn an_invitation_is_emailed_with_a_link_that_works(engine: Engine) {
    let mut sink = sink().await;
    let app = mailing_app(engine, format!("smtp://127.0.0.1:{}", sink.port)).await;
    let admin = app.sign_in("admin@globex.test", PW).await;
    let res = app
        .call(
            Some(&admin),
            "invite_member",
            &[("email", "ivy@partner.test"), ("role", "operator")],
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json()["email"], "sent");
    let path = res.json()["path"].as_str().unwrap().to_owned();

    let line = tokio::time::timeout(std::time::Duration::from_secs(10), sink.lines.next_line())
        .await
        .expect("a message arrives")
        .unwrap()
        .unwrap();
    let mail: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(mail["from"], "portal@acme.example");
    assert_eq!(mail["to"], serde_json::json!(["ivy@partner.test"]));
    let data = mail["data"].as_str().unwrap().replace("=\r\n", "");
    assert!(
        data.contains("Subject: You are invited to Globex on Acme Cloud"),
        "{data}"
    );
    assert!(data.contains("To: ivy@partner.test"), "{data}");
    assert!(
        data.contains(&format!("{PUBLIC}{path}")),
        "the link, absolute: {data}"
    );
    assert!(data.contains("as operator"), "{data}");

    // The emailed link is the one that works.
    let token = path.trim_start_matches("/invite/");
    let joined = accept(&app, token, "Ivy", NEW_PW).await;
    assert_eq!(joined.status, 200, "{}", joined.body);
}

async fn a_failed_email_leaves_the_link_to_copy(engine: Engine) {
    // Nothing listens there.
    let port = common::unused_port();
    let app = mailing_app(engine, format!("smtp://127.0.0.1:{port}")).await;
    let admin = app.sign_in("admin@globex.test", PW).await;
    let res = app
        .call(
            Some(&admin),
            "invite_member",
            &[("email", "ivy@partner.test"), ("role", "viewer")],
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json()["email"], "failed");
    let token = res.json()["path"]
        .as_str()
        .unwrap()
        .trim_start_matches("/invite/")
        .to_owned();
    assert_eq!(accept(&app, &token, "Ivy", NEW_PW).await.status, 200);
}

on_both_engines!(
    an_invitation_is_emailed_with_a_link_that_works,
    a_failed_email_leaves_the_link_to_copy,
    an_invited_person_joins_with_the_role_they_were_given,
    an_existing_account_joins_with_its_own_password,
    used_revoked_and_made_up_links_are_not_found,
    two_acceptances_at_once_give_one_account_and_no_server_error,
    an_invitation_links_token_never_reaches_the_log,
    the_last_admin_can_be_neither_demoted_nor_removed,
    a_removed_member_is_signed_out_at_once,
    another_tenants_members_cannot_be_touched,
);
