//! Single sign-on against a real OpenID Connect provider: the npm package `oidc-provider`,
//! configured by `end2end/oidc/provider.mjs` and started by each test on a loopback port.
//!
//! Between the portal and the provider sits a forwarding proxy of this test's own, whose URL
//! is the issuer. It passes everything through, except that a test may have it replace the ID
//! token in the token endpoint's answer with a forgery (re-signed with the provider's own key
//! where the forgery needs a good signature), to show that each check refuses what it must.
//! The browser's part (the provider's login form) is played by an HTTP client with cookies.

use crate::common;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use common::{Engine, Reply, TestApp};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, BufReader};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/embed");
const PROVIDER_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../end2end/oidc/provider.mjs");
/// The portal's public URL in these tests (requests reach it through `TestApp::send`).
const PUBLIC: &str = "http://localhost:3999";
const CLIENT_ID: &str = "portico-test";
const SECRET_ENV: &str = "PORTICO_TEST_SSO_SECRET";
const SECRET: &str = "test-client-secret-0123456789abcdef";
const KID: &str = "fixture-rsa";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap()
}

type Forgery = Arc<dyn Fn(&str) -> String + Send + Sync>;

#[derive(Clone)]
struct ProxyState {
    upstream: String,
    client: reqwest::Client,
    forge: Arc<Mutex<Option<Forgery>>>,
}

/// Passes a request on to the provider, and its answer back; the token endpoint's ID token
/// goes through the forgery, if one is set.
async fn forward(State(p): State<ProxyState>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let target = format!(
        "{}{}",
        p.upstream,
        req.uri().path_and_query().map_or("/", |pq| pq.as_str())
    );
    let method = req.method().clone();
    let headers = req.headers().clone();
    let body = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .unwrap();
    let mut out = p.client.request(method, target).body(body);
    for (k, v) in &headers {
        if k != "host" && k != "content-length" {
            out = out.header(k, v);
        }
    }
    let res = out.send().await.expect("the provider answers");
    let status = res.status();
    let mut headers = res.headers().clone();
    let mut bytes = res.bytes().await.unwrap().to_vec();
    let forge = p.forge.lock().unwrap().clone();
    if let (true, true, Some(forge)) = (path == "/token", status.is_success(), forge) {
        let mut json: Map<String, Value> = serde_json::from_slice(&bytes).unwrap();
        let real = json["id_token"].as_str().unwrap().to_owned();
        json.insert("id_token".into(), Value::String(forge(&real)));
        bytes = serde_json::to_vec(&json).unwrap();
    }
    headers.remove("content-length");
    headers.remove("transfer-encoding");
    let mut response = (status, bytes).into_response();
    *response.headers_mut() = headers;
    response
}

/// The provider, behind the proxy, for one test.
struct Idp {
    _node: tokio::process::Child,
    /// The portal's id for this issuer: `/sso/<id>/start`.
    id: &'static str,
    issuer: String,
    forge: Arc<Mutex<Option<Forgery>>>,
}

/// Plays a browser at the provider, its own cookie jar each time (a person per browser: the
/// provider would first sign out someone else): follows redirects, stops at the portal.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            if attempt.url().as_str().starts_with(PUBLIC) {
                attempt.stop()
            } else {
                attempt.follow()
            }
        }))
        .build()
        .unwrap()
}

impl Idp {
    /// The issuer the portal calls `fixture`.
    async fn start() -> Idp {
        Idp::start_as("fixture").await
    }

    /// A provider of its own (own process, own port), which the portal calls `id`.
    async fn start_as(id: &'static str) -> Idp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let mut node = tokio::process::Command::new("node")
            .arg(PROVIDER_SCRIPT)
            .args(["--port", "0", "--issuer", &issuer])
            .args(["--key", &format!("{FIXTURES}/rsa.key"), "--kid", KID])
            .args(["--client-id", CLIENT_ID, "--client-secret", SECRET])
            .args(["--redirect-uri", &format!("{PUBLIC}/sso/{id}/callback")])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect(
                "node runs end2end/oidc/provider.mjs (scripts/test installs its packages with npm ci)",
            );
        let mut lines = BufReader::new(node.stdout.take().unwrap()).lines();
        let upstream = tokio::time::timeout(std::time::Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(url) = line.strip_prefix("oidc-provider listening on ") {
                    return url.trim().to_owned();
                }
            }
            panic!("the OpenID provider fixture exited before it listened")
        })
        .await
        .expect("the OpenID provider fixture starts within 30 s");
        // Keep reading its output so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let forge = Arc::new(Mutex::new(None));
        let state = ProxyState {
            upstream,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            forge: forge.clone(),
        };
        let proxy = axum::Router::new().fallback(forward).with_state(state);
        tokio::spawn(async move { axum::serve(listener, proxy).await.unwrap() });
        Idp {
            _node: node,
            id,
            issuer,
            forge,
        }
    }

    /// Follows the portal's redirect to the provider, signs in on its form as `email`, and
    /// returns the portal URL (path and query) the provider sends the browser back to.
    async fn log_in(&self, authorize: &str, email: &str, groups: &str, verified: bool) -> String {
        let browser = browser();
        let form = browser.get(authorize).send().await.unwrap();
        assert_eq!(form.status(), 200, "the provider shows its login form");
        let action = format!("{}/login", form.url().as_str().trim_end_matches('/'));
        let mut fields = vec![("email", email), ("groups", groups)];
        if !verified {
            fields.push(("unverified", "on"));
        }
        let back = browser.post(action).form(&fields).send().await.unwrap();
        if !back.status().is_redirection() {
            panic!(
                "the provider sends the browser back, not {} at {}: {}",
                back.status(),
                back.url().clone(),
                back.text().await.unwrap_or_default()
            );
        }
        let location = back.headers()["location"].to_str().unwrap().to_owned();
        let path = location
            .strip_prefix(PUBLIC)
            .unwrap_or_else(|| panic!("back to the portal, not {location}"));
        assert!(
            path.starts_with(&format!("/sso/{}/callback?", self.id)),
            "{path}"
        );
        path.to_owned()
    }
}

/// The demo provider with the fixture as its own, provider-wide issuer: initech admits
/// verified emails of its domain as viewers, umbrella admits the group `umbrella-ops` as
/// operators. `more` is appended (further issuers).
fn config_with(issuer: &str, more: &str) -> app::domain::ProviderConfig {
    let toml = format!(
        "{}\n[[sso]]\nid = \"fixture\"\nissuer = \"{issuer}\"\nclient_id = \"{CLIENT_ID}\"\n\
         client_secret_env = \"{SECRET_ENV}\"\nlabel = \"Sign in with Fixture ID\"\n\
         scopes = [\"openid\", \"email\", \"profile\", \"groups\"]\nprovider_wide = true\n\n\
         [[sso.rules]]\ntenant = \"initech\"\nrole = \"viewer\"\nemail_domain = \"initech.test\"\n\n\
         [[sso.rules]]\ntenant = \"umbrella\"\nrole = \"operator\"\nclaim = \"groups\"\nvalue = \"umbrella-ops\"\n{more}",
        app::server::config::DEMO_CONFIG
    );
    app::server::config::parse("sso.toml", &toml).unwrap()
}

fn config(issuer: &str) -> app::domain::ProviderConfig {
    config_with(issuer, "")
}

async fn portal(engine: Engine, issuer: &str) -> TestApp {
    portal_for(engine, config(issuer)).await
}

async fn portal_for(engine: Engine, provider: app::domain::ProviderConfig) -> TestApp {
    // Every test sets the same value; tests of this binary only read it.
    std::env::set_var(SECRET_ENV, SECRET);
    let settings = app::server::state::Settings {
        public_origin: Some(PUBLIC.into()),
        ..Default::default()
    };
    TestApp::spawn_custom(engine, settings, provider).await
}

async fn get(app: &TestApp, path: &str, cookie: Option<&str>) -> Reply {
    let mut req = axum::http::Request::get(path).header("accept", "text/html");
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    app.send(req.body(Body::empty()).unwrap()).await
}

/// `name=value` of the cookie `name` a response sets.
fn set_cookie(r: &Reply, name: &str) -> Option<String> {
    r.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap().to_owned())
}

/// A sign-in started at the portal and completed at the provider, not yet back.
struct Pending {
    callback: String,
    browser_cookie: String,
}

async fn begin(app: &TestApp, idp: &Idp, email: &str, groups: &str, verified: bool) -> Pending {
    let start = get(app, &format!("/sso/{}/start", idp.id), None).await;
    assert_eq!(start.status, 303, "{}", start.body);
    let browser_cookie = set_cookie(&start, "__Host-portico_sso").expect("the browser cookie");
    let authorize = start.header("location").unwrap().to_owned();
    assert!(authorize.starts_with(&idp.issuer), "{authorize}");
    for p in [
        "code_challenge_method=S256",
        "code_challenge=",
        "state=",
        "nonce=",
        "scope=openid",
    ] {
        assert!(authorize.contains(p), "{p} in {authorize}");
    }
    let callback = idp.log_in(&authorize, email, groups, verified).await;
    Pending {
        callback,
        browser_cookie,
    }
}

/// Comes back to the portal; returns the answer.
async fn finish(app: &TestApp, p: &Pending) -> Reply {
    get(app, &p.callback, Some(&p.browser_cookie)).await
}

/// Comes back to the portal in a browser that is signed in with the session cookie `session`.
async fn finish_signed_in(app: &TestApp, p: &Pending, session: &str) -> Reply {
    let cookies = format!("{}; {session}", p.browser_cookie);
    get(app, &p.callback, Some(&cookies)).await
}

/// The tenant and role a session cookie is signed in to.
async fn whoami(app: &TestApp, session: &str) -> (String, String) {
    let me = app.call(Some(session), "current_user", &[]).await;
    assert_eq!(me.status, 200, "{}", me.body);
    let me = me.json();
    (
        me["tenant_name"].as_str().unwrap().to_owned(),
        me["role"].as_str().unwrap().to_owned(),
    )
}

/// Signs in through the provider and returns the session cookie.
async fn sso_session(
    app: &TestApp,
    idp: &Idp,
    email: &str,
    groups: &str,
    verified: bool,
) -> String {
    let back = finish(app, &begin(app, idp, email, groups, verified).await).await;
    assert_eq!(back.status, 303, "{}", back.body);
    assert_eq!(back.header("location"), Some("/instances"));
    back.session_cookie().expect("a session")
}

fn assert_refused(r: &Reply, status: u16, text: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert!(r.body.contains(text), "{text:?} in {}", r.body);
    assert!(r.session_cookie().is_none(), "no session starts");
}

// ---- who gets in, and where ----

async fn a_member_signs_in_by_verified_email_and_stays_linked(engine: Engine) {
    let idp = Idp::start().await;
    let app = portal(engine, &idp.issuer).await;
    // ops@globex.test has a password: the issuer's word alone does not link to that account.
    let unproved = finish(&app, &begin(&app, &idp, "ops@globex.test", "", true).await).await;
    assert_refused(&unproved, 403, "sign in with your password first");
    // Signed in with the password in the same browser, the identity is linked.
    let password_session = app.sign_in("ops@globex.test", "portico-demo").await;
    let p = begin(&app, &idp, "ops@globex.test", "", true).await;
    let back = finish_signed_in(&app, &p, &password_session).await;
    assert_eq!(back.status, 303, "{}", back.body);
    let session = back.session_cookie().expect("a session");
    assert_eq!(
        whoami(&app, &session).await,
        ("Globex".into(), "operator".into())
    );
    // The same instances as a password sign-in shows that member.
    let filters = [("environment", ""), ("status", ""), ("q", "")];
    let by_sso = app.call(Some(&session), "list_instances", &filters).await;
    let by_password = app
        .call(
            Some(&app.sign_in("ops@globex.test", "portico-demo").await),
            "list_instances",
            &filters,
        )
        .await;
    assert_eq!(by_sso.status, 200);
    assert!(!by_sso.json()["items"].as_array().unwrap().is_empty());
    assert_eq!(by_sso.json(), by_password.json());

    // The identity is now linked by iss + sub: the next sign-in needs no verified email.
    let again = sso_session(&app, &idp, "ops@globex.test", "", false).await;
    assert_eq!(whoami(&app, &again).await.0, "Globex");
}

async fn an_invitation_admits_a_new_person_with_its_role(engine: Engine) {
    let idp = Idp::start().await;
    let app = portal(engine, &idp.issuer).await;
    let admin = app.sign_in("admin@globex.test", "portico-demo").await;
    let invited = app
        .call(
            Some(&admin),
            "invite_member",
            &[("email", "newcomer@partner.test"), ("role", "operator")],
        )
        .await;
    assert_eq!(invited.status, 200, "{}", invited.body);
    let session = sso_session(&app, &idp, "newcomer@partner.test", "", true).await;
    assert_eq!(
        whoami(&app, &session).await,
        ("Globex".into(), "operator".into())
    );
    // The invitation is used up and the join is audited.
    let members = app.call(Some(&admin), "list_members", &[]).await.json();
    assert!(
        members["invitations"].as_array().unwrap().is_empty(),
        "{members}"
    );
    let audit = app.member_joins(&admin).await;
    assert!(audit.contains("newcomer@partner.test"), "{}", audit);
}

async fn rules_admit_by_verified_domain_and_by_claim(engine: Engine) {
    let idp = Idp::start().await;
    let app = portal(engine, &idp.issuer).await;
    let by_domain = sso_session(&app, &idp, "newcomer@initech.test", "", true).await;
    assert_eq!(
        whoami(&app, &by_domain).await,
        ("Initech".into(), "viewer".into())
    );
    let by_claim = sso_session(
        &app,
        &idp,
        "contractor@elsewhere.test",
        "staff, umbrella-ops",
        true,
    )
    .await;
    assert_eq!(
        whoami(&app, &by_claim).await,
        ("Umbrella".into(), "operator".into())
    );
    let admin = app.sign_in("admin@umbrella.test", "portico-demo").await;
    let audit = app.member_joins(&admin).await;
    assert!(audit.contains("contractor@elsewhere.test"), "{}", audit);
}

async fn an_identity_without_a_tenant_gets_a_page_and_no_session(engine: Engine) {
    let idp = Idp::start().await;
    let app = portal(engine, &idp.issuer).await;
    let nobody = finish(
        &app,
        &begin(&app, &idp, "someone@elsewhere.test", "", true).await,
    )
    .await;
    assert_refused(&nobody, 403, "no access to any organisation");
    assert!(nobody.body.contains("href=\"/sign-in\""));
    // A domain rule needs the issuer to vouch for the email.
    let unverified = finish(
        &app,
        &begin(&app, &idp, "sneaky@initech.test", "", false).await,
    )
    .await;
    assert_refused(&unverified, 403, "not verified your email");
    // Nor does an unverified email take over the account that has it.
    let takeover = finish(
        &app,
        &begin(&app, &idp, "admin@globex.test", "", false).await,
    )
    .await;
    assert_refused(&takeover, 403, "not verified your email");
    // A disabled account stays out, verified email or not.
    let viewer = app
        .db
        .store
        .user_credentials(&app::domain::Email::parse("viewer@globex.test").unwrap())
        .await
        .unwrap()
        .unwrap();
    app.db
        .store
        .set_user_disabled(&viewer.user_id, true, app::server::store::now_millis())
        .await
        .unwrap();
    let disabled = finish(
        &app,
        &begin(&app, &idp, "viewer@globex.test", "", true).await,
    )
    .await;
    assert_refused(&disabled, 403, "disabled");
}

/// Globex's own identity provider, beside the provider-wide fixture: it vouches for Globex
/// only, and only for emails of Globex's domains.
const GLOBEX_ISSUER: &str =
    "\n[[sso]]\nid = \"globex-id\"\nissuer = \"{issuer}\"\nclient_id = \"{client}\"\n\
     client_secret_env = \"{secret}\"\nlabel = \"Sign in with Globex ID\"\n\
     tenants = [\"globex\"]\nemail_domains = [\"globex.test\", \"partner.test\"]\n";

async fn two_issuers(engine: Engine) -> (Idp, Idp, TestApp) {
    let (fixture, globex) = (Idp::start().await, Idp::start_as("globex-id").await);
    let more = GLOBEX_ISSUER
        .replace("{issuer}", &globex.issuer)
        .replace("{client}", CLIENT_ID)
        .replace("{secret}", SECRET_ENV);
    let app = portal_for(engine, config_with(&fixture.issuer, &more)).await;
    (fixture, globex, app)
}

async fn invite(app: &TestApp, admin: &str, email: &str, role: &str) -> String {
    app.invite(admin, email, role).await.0
}

async fn a_tenants_own_issuer_vouches_for_nobody_outside_that_tenant(engine: Engine) {
    let (fixture, globex_id, app) = two_issuers(engine).await;
    let umbrella_admin = app.sign_in("admin@umbrella.test", "portico-demo").await;

    // Globex's issuer asserting Umbrella's admin, verified: no session, nothing linked.
    let takeover = finish(
        &app,
        &begin(&app, &globex_id, "admin@umbrella.test", "", true).await,
    )
    .await;
    assert_refused(&takeover, 403, "no access to any organisation");

    // An Umbrella member whose email is in a domain Globex's issuer may vouch for.
    let token = invite(&app, &umbrella_admin, "contractor@partner.test", "admin").await;
    let joined = app
        .call(
            None,
            "accept_invitation",
            &[
                ("token", token.as_str()),
                ("display_name", "Contractor"),
                ("password", "a-long-new-password"),
            ],
        )
        .await;
    assert_eq!(joined.status, 200, "{}", joined.body);
    let takeover = finish(
        &app,
        &begin(&app, &globex_id, "contractor@partner.test", "", true).await,
    )
    .await;
    assert_refused(&takeover, 403, "no access to any organisation");
    // The password chosen through Umbrella's link still works: Globex's issuer changed nothing.
    app.sign_in("contractor@partner.test", "a-long-new-password")
        .await;

    // Nor does it take an invitation of another tenant.
    invite(&app, &umbrella_admin, "newcomer@globex.test", "operator").await;
    let taken = finish(
        &app,
        &begin(&app, &globex_id, "newcomer@globex.test", "", true).await,
    )
    .await;
    assert_refused(&taken, 403, "no access to any organisation");
    let members = app
        .call(Some(&umbrella_admin), "list_members", &[])
        .await
        .json();
    let pending = members["invitations"].as_array().unwrap();
    assert!(
        pending.iter().any(|i| i["email"] == "newcomer@globex.test"),
        "the invitation is still pending: {members}"
    );

    // Inside its tenant it works: a Globex invitation, by Globex's issuer.
    let globex_admin = app.sign_in("admin@globex.test", "portico-demo").await;
    invite(&app, &globex_admin, "second@partner.test", "viewer").await;
    let session = sso_session(&app, &globex_id, "second@partner.test", "", true).await;
    assert_eq!(
        whoami(&app, &session).await,
        ("Globex".into(), "viewer".into())
    );
    // An email outside its domains is refused even with a Globex invitation.
    invite(&app, &globex_admin, "someone@elsewhere.test", "viewer").await;
    let outside = finish(
        &app,
        &begin(&app, &globex_id, "someone@elsewhere.test", "", true).await,
    )
    .await;
    assert_refused(&outside, 403, "no access to any organisation");

    // The provider-wide issuer still admits Umbrella's invitation.
    let session = sso_session(&app, &fixture, "newcomer@globex.test", "", true).await;
    assert_eq!(
        whoami(&app, &session).await,
        ("Umbrella".into(), "operator".into())
    );
}

async fn a_password_chosen_through_an_invitation_link_is_cleared_when_the_owner_links(
    engine: Engine,
) {
    let idp = Idp::start().await;
    let app = portal(engine, &idp.issuer).await;
    let admin = app.sign_in("admin@globex.test", "portico-demo").await;
    let token = invite(&app, &admin, "holder@partner.test", "operator").await;
    let joined = app
        .call(
            None,
            "accept_invitation",
            &[
                ("token", token.as_str()),
                ("display_name", "Whoever held the link"),
                ("password", "a-long-new-password"),
            ],
        )
        .await;
    assert_eq!(joined.status, 200, "{}", joined.body);
    let link_holder = joined.session_cookie().expect("a session");

    // The email's owner signs in through the issuer: no password asked, the account linked.
    let session = sso_session(&app, &idp, "holder@partner.test", "", true).await;
    assert_eq!(
        whoami(&app, &session).await,
        ("Globex".into(), "operator".into())
    );
    // The link holder's password and session are gone.
    let refused = app
        .call(
            None,
            "sign_in",
            &[
                ("email", "holder@partner.test"),
                ("password", "a-long-new-password"),
            ],
        )
        .await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    let me = app.call(Some(&link_holder), "current_user", &[]).await;
    assert_eq!(me.status, 401, "{}", me.body);
}

// ---- the flow's own checks ----

async fn a_wrong_or_missing_state_or_browser_is_refused(engine: Engine) {
    let idp = Idp::start().await;
    let app = portal(engine, &idp.issuer).await;
    let p = begin(&app, &idp, "ops@globex.test", "", true).await;
    // RFC 9207: an answer that says another issuer sent it (a mix-up) is refused.
    assert!(
        p.callback.contains("&iss="),
        "the provider names itself: {}",
        p.callback
    );
    let mixed_up: String = p
        .callback
        .split('&')
        .map(|kv| {
            if kv.starts_with("iss=") {
                "iss=https%3A%2F%2Fevil.example"
            } else {
                kv
            }
        })
        .collect::<Vec<_>>()
        .join("&");
    assert_refused(
        &get(&app, &mixed_up, Some(&p.browser_cookie)).await,
        401,
        "could not be verified",
    );
    let wrong_state = p.callback.replace("state=", "state=x");
    assert_refused(
        &get(&app, &wrong_state, Some(&p.browser_cookie)).await,
        400,
        "expired or was already used",
    );
    let no_state: String = p
        .callback
        .split('&')
        .filter(|kv| !kv.starts_with("state="))
        .collect::<Vec<_>>()
        .join("&");
    assert_refused(
        &get(&app, &no_state, Some(&p.browser_cookie)).await,
        400,
        "expired or was already used",
    );

    // The right state from another browser (a link someone sent): refused, and spent.
    let p = begin(&app, &idp, "ops@globex.test", "", true).await;
    assert_refused(
        &get(&app, &p.callback, Some("__Host-portico_sso=someone-else")).await,
        400,
        "expired or was already used",
    );
    assert_refused(&finish(&app, &p).await, 400, "expired or was already used");
}

async fn a_replayed_code_is_refused(engine: Engine) {
    let idp = Idp::start().await;
    let app = portal(engine, &idp.issuer).await;
    let p = begin(&app, &idp, "newcomer@initech.test", "", true).await;
    assert_eq!(finish(&app, &p).await.status, 303);
    // The same callback again: its state is spent.
    assert_refused(&finish(&app, &p).await, 400, "expired or was already used");
    // The used code under a fresh sign-in's state: the provider refuses it (used, and not
    // this sign-in's PKCE verifier).
    let fresh = begin(&app, &idp, "newcomer@initech.test", "", true).await;
    let state = fresh
        .callback
        .split(['?', '&'])
        .find(|kv| kv.starts_with("state="))
        .unwrap();
    let old_code = p
        .callback
        .split(['?', '&'])
        .find(|kv| kv.starts_with("code="))
        .unwrap();
    let injected = format!("/sso/fixture/callback?{old_code}&{state}");
    assert_refused(
        &get(&app, &injected, Some(&fresh.browser_cookie)).await,
        401,
        "could not be verified",
    );
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn claims_of(token: &str) -> Map<String, Value> {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

/// The real token's claims, changed by `edit`, signed again with the provider's own key.
fn resigned(
    edit: impl Fn(&mut Map<String, Value>) + Send + Sync + 'static,
) -> impl Fn(&str) -> String + Send + Sync {
    move |real| {
        let mut c = claims_of(real);
        edit(&mut c);
        let mut h = Header::new(Algorithm::RS256);
        h.kid = Some(KID.into());
        jsonwebtoken::encode(
            &h,
            &c,
            &EncodingKey::from_rsa_pem(fixture("rsa.key").as_bytes()).unwrap(),
        )
        .unwrap()
    }
}

fn now() -> i64 {
    app::server::store::now_millis() / 1000
}

/// Each forged ID token is refused and starts no session; the same route with the real
/// claims re-signed succeeds, so it is each change that is refused.
async fn forged_id_tokens_are_refused(engine: Engine) {
    let idp = Idp::start().await;
    let app = portal(engine, &idp.issuer).await;
    let attempt = |forgery: Forgery| {
        let (app, idp) = (&app, &idp);
        async move {
            *idp.forge.lock().unwrap() = Some(forgery);
            finish(
                app,
                &begin(app, idp, "newcomer@initech.test", "", true).await,
            )
            .await
        }
    };

    let control = attempt(Arc::new(resigned(|_| {}))).await;
    assert_eq!(
        control.status, 303,
        "re-signed real claims pass: {}",
        control.body
    );

    let issuer = idp.issuer.clone();
    let forgeries: Vec<(&str, Forgery)> = vec![
        (
            "wrong nonce",
            Arc::new(resigned(|c| {
                c.insert("nonce".into(), "someone-elses-nonce".into());
            })),
        ),
        (
            "wrong aud",
            Arc::new(resigned(|c| {
                c.insert("aud".into(), "another-client".into());
            })),
        ),
        (
            "second aud without azp",
            Arc::new(resigned(|c| {
                c.insert(
                    "aud".into(),
                    serde_json::json!([CLIENT_ID, "another-client"]),
                );
                c.remove("azp");
            })),
        ),
        (
            "wrong iss",
            Arc::new(resigned(|c| {
                c.insert("iss".into(), "https://evil.example".into());
            })),
        ),
        (
            "issuer with a trailing slash",
            Arc::new(resigned(move |c| {
                c.insert("iss".into(), format!("{issuer}/").into());
            })),
        ),
        (
            "expired",
            Arc::new(resigned(|c| {
                c.insert("iat".into(), (now() - 3600).into());
                c.insert("exp".into(), (now() - 1800).into());
            })),
        ),
        (
            "issued long ago",
            Arc::new(resigned(|c| {
                c.insert("iat".into(), (now() - 3600).into());
            })),
        ),
        (
            "issued in the future",
            Arc::new(resigned(|c| {
                c.insert("iat".into(), (now() + 600).into());
                c.insert("exp".into(), (now() + 1200).into());
            })),
        ),
        (
            "not yet valid",
            Arc::new(resigned(|c| {
                c.insert("nbf".into(), (now() + 600).into());
            })),
        ),
        (
            "alg none",
            Arc::new(|real: &str| {
                let header =
                    b64(format!(r#"{{"alg":"none","typ":"JWT","kid":"{KID}"}}"#).as_bytes());
                format!("{header}.{}.", real.split('.').nth(1).unwrap())
            }),
        ),
        (
            "HS256 keyed with the RSA public key",
            Arc::new(|real: &str| {
                let mut h = Header::new(Algorithm::HS256);
                h.kid = Some(KID.into());
                jsonwebtoken::encode(
                    &h,
                    &claims_of(real),
                    &EncodingKey::from_secret(fixture("rsa.pub").as_bytes()),
                )
                .unwrap()
            }),
        ),
        (
            "unknown kid",
            Arc::new(|real: &str| {
                let mut h = Header::new(Algorithm::ES256);
                h.kid = Some("rogue".into());
                jsonwebtoken::encode(
                    &h,
                    &claims_of(real),
                    &EncodingKey::from_ec_pem(fixture("p256.key").as_bytes()).unwrap(),
                )
                .unwrap()
            }),
        ),
        (
            "the provider's kid, another key",
            Arc::new(|real: &str| {
                let mut h = Header::new(Algorithm::RS256);
                h.kid = Some(KID.into());
                let other =
                    EncodingKey::from_rsa_pem(include_bytes!("../fixtures/sso/other-rsa.key"))
                        .unwrap();
                jsonwebtoken::encode(&h, &claims_of(real), &other).unwrap()
            }),
        ),
        (
            "tampered payload",
            Arc::new(|real: &str| {
                let mut parts: Vec<String> = real.split('.').map(str::to_owned).collect();
                let mut c = claims_of(real);
                c.insert("email".into(), "admin@globex.test".into());
                parts[1] = b64(&serde_json::to_vec(&c).unwrap());
                parts.join(".")
            }),
        ),
    ];
    for (name, forgery) in forgeries {
        let r = attempt(forgery).await;
        assert_eq!(r.status, 401, "{name}: {}", r.body);
        assert!(
            r.body.contains("could not be verified"),
            "{name}: {}",
            r.body
        );
        assert!(r.session_cookie().is_none(), "{name} starts no session");
    }
}

// ---- the edges ----

async fn starting_inside_a_frame_continues_at_the_top(engine: Engine) {
    let idp = Idp::start().await;
    let app = portal(engine, &idp.issuer).await;
    let req = axum::http::Request::get("/sso/fixture/start")
        .header("sec-fetch-dest", "iframe")
        .body(Body::empty())
        .unwrap();
    let r = app.send(req).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("target=\"_top\""), "{}", r.body);
    assert!(set_cookie(&r, "__Host-portico_sso").is_none());

    // The sign-in page offers the issuer by its label, opening at the top level.
    let options = app.call(None, "sign_in_options", &[]).await;
    assert_eq!(
        options.json(),
        serde_json::json!([{ "id": "fixture", "label": "Sign in with Fixture ID" }])
    );
    assert_eq!(get(&app, "/sso/nonexistent/start", None).await.status, 404);
}

async fn a_client_may_start_only_so_many_sign_ins(engine: Engine) {
    let idp = Idp::start().await;
    let app = portal(engine, &idp.issuer).await;
    let from = |ip: &str| {
        let mut req = axum::http::Request::get("/sso/fixture/start")
            .header("accept", "text/html")
            .body(Body::empty())
            .unwrap();
        let addr: std::net::SocketAddr = format!("{ip}:40000").parse().unwrap();
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(addr));
        req
    };
    for _ in 0..60 {
        assert_eq!(app.send(from("203.0.113.7")).await.status, 303);
    }
    let refused = app.send(from("203.0.113.7")).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert!(refused.header("retry-after").is_some());
    assert!(set_cookie(&refused, "__Host-portico_sso").is_none());
    assert_eq!(app.send(from("198.51.100.2")).await.status, 303);
}

async fn a_discovery_document_for_another_issuer_is_refused(engine: Engine) {
    let idp = Idp::start().await;
    // The configuration names the issuer with a path the provider does not state as its own.
    let app = portal(engine, &format!("{}/tenant-a", idp.issuer)).await;
    let r = get(&app, "/sso/fixture/start", None).await;
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(r.body.contains("cannot be reached"));
    assert!(set_cookie(&r, "__Host-portico_sso").is_none());
}

on_both_engines!(
    a_member_signs_in_by_verified_email_and_stays_linked,
    an_invitation_admits_a_new_person_with_its_role,
    rules_admit_by_verified_domain_and_by_claim,
    an_identity_without_a_tenant_gets_a_page_and_no_session,
    a_tenants_own_issuer_vouches_for_nobody_outside_that_tenant,
    a_password_chosen_through_an_invitation_link_is_cleared_when_the_owner_links,
    a_wrong_or_missing_state_or_browser_is_refused,
    a_replayed_code_is_refused,
    forged_id_tokens_are_refused,
    starting_inside_a_frame_continues_at_the_top,
    a_client_may_start_only_so_many_sign_ins,
    a_discovery_document_for_another_issuer_is_refused,
);
