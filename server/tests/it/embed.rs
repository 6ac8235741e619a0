//! Embedded mode: the provider's backend mints a short-lived token, the iframe opens
//! `/embed?token=…`, and the portal signs its user in, once, or shows why not.
//!
//! The keys in `tests/fixtures/embed/` were generated with openssl for these tests only.

use crate::common;

use app::domain::provider::EmbedAlgorithm;
use app::server::embed::{mint, EmbedClaims, EmbedRejection, EmbedVerifier};
use app::server::state::Settings;
use app::server::store::{new_id, now_millis};
use common::{Engine, TestApp};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/embed");
const PROVIDER_SITE: &str = "http://127.0.0.1:4100";
const HS_ENV: &str = "PORTICO_TEST_EMBED_SECRET";
const HS_SECRET: &str = "a-shared-secret-of-at-least-32-bytes!";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap()
}

/// The demo provider, embeddable from the provider's site, with one key per algorithm;
/// initech admits members just in time.
fn embed_config() -> String {
    format!(
        "{}\n[security]\nframe_ancestors = [\"{PROVIDER_SITE}\"]\n\n\
         [embed]\nissuer = \"https://acme.example\"\naudience = \"portico\"\n\
         just_in_time_tenants = [\"initech\"]\n\n\
         [[embed.keys]]\nkid = \"ed\"\nalgorithm = \"EdDSA\"\npublic_key = \"\"\"\n{}\"\"\"\n\n\
         [[embed.keys]]\nkid = \"ec\"\nalgorithm = \"ES256\"\npublic_key = \"\"\"\n{}\"\"\"\n\n\
         [[embed.keys]]\nkid = \"rsa\"\nalgorithm = \"RS256\"\npublic_key = \"\"\"\n{}\"\"\"\n\n\
         [[embed.keys]]\nkid = \"hs\"\nalgorithm = \"HS256\"\nsecret_env = \"{HS_ENV}\"\n",
        app::server::config::DEMO_CONFIG,
        fixture("ed25519.pub"),
        fixture("p256.pub"),
        fixture("rsa.pub"),
    )
}

fn provider() -> app::domain::ProviderConfig {
    app::server::config::parse("embed.toml", &embed_config()).unwrap()
}

fn now() -> u64 {
    u64::try_from(now_millis() / 1000).unwrap()
}

fn claims(tenant: &str, email: &str, role: &str) -> EmbedClaims {
    EmbedClaims {
        iss: "https://acme.example".into(),
        aud: "portico".into(),
        sub: format!("user-{email}"),
        email: email.into(),
        tenant: tenant.into(),
        role: role.into(),
        iat: now(),
        exp: now() + 120,
        jti: new_id(),
        name: None,
    }
}

fn signed(c: &EmbedClaims) -> String {
    mint(
        EmbedAlgorithm::EdDSA,
        "ed",
        fixture("ed25519.key").as_bytes(),
        c,
    )
    .unwrap()
}

fn verifier() -> EmbedVerifier {
    EmbedVerifier::new(provider().embed.as_ref().unwrap(), |var| {
        (var == HS_ENV).then(|| HS_SECRET.to_owned())
    })
    .unwrap()
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

async fn spawn(engine: Engine) -> TestApp {
    // Every test sets the same value, so parallel tests cannot disturb each other.
    std::env::set_var(HS_ENV, HS_SECRET);
    TestApp::spawn_custom(engine, Settings::default(), provider()).await
}

async fn open(app: &TestApp, token: &str) -> common::Reply {
    app.page(None, &format!("/embed?token={token}")).await
}

// ---- the verifier: every way a token can be wrong ----

#[test]
fn a_well_formed_token_verifies_with_each_algorithm() {
    let v = verifier();
    let c = claims("globex", "admin@globex.test", "admin");
    for (alg, kid, key) in [
        (EmbedAlgorithm::EdDSA, "ed", fixture("ed25519.key")),
        (EmbedAlgorithm::ES256, "ec", fixture("p256.key")),
        (EmbedAlgorithm::RS256, "rsa", fixture("rsa.key")),
        (EmbedAlgorithm::HS256, "hs", HS_SECRET.to_owned()),
    ] {
        let token = mint(alg, kid, key.as_bytes(), &c).unwrap();
        let id = v
            .verify(&token, now())
            .unwrap_or_else(|e| panic!("{kid}: {e}"));
        assert_eq!(id.tenant.as_str(), "globex");
        assert_eq!(id.email.as_str(), "admin@globex.test");
        assert_eq!(id.jti, c.jti);
    }
}

#[test]
fn expired_and_future_tokens_are_refused() {
    let v = verifier();
    let mut c = claims("globex", "admin@globex.test", "admin");
    c.iat = now() - 400;
    c.exp = now() - 200;
    assert_eq!(v.verify(&signed(&c), now()), Err(EmbedRejection::Expired));
    c.iat = now() + 600;
    c.exp = now() + 700;
    assert_eq!(
        v.verify(&signed(&c), now()),
        Err(EmbedRejection::NotYetValid)
    );
}

#[test]
fn a_token_living_longer_than_five_minutes_is_refused() {
    let mut c = claims("globex", "admin@globex.test", "admin");
    c.exp = c.iat + 301;
    assert_eq!(
        verifier().verify(&signed(&c), now()),
        Err(EmbedRejection::LifetimeTooLong)
    );
}

#[test]
fn wrong_issuer_or_audience_is_refused() {
    let v = verifier();
    let mut c = claims("globex", "admin@globex.test", "admin");
    c.aud = "someone-else".into();
    assert_eq!(
        v.verify(&signed(&c), now()),
        Err(EmbedRejection::WrongAudience)
    );
    let mut c = claims("globex", "admin@globex.test", "admin");
    c.iss = "https://evil.example".into();
    assert_eq!(
        v.verify(&signed(&c), now()),
        Err(EmbedRejection::WrongIssuer)
    );
}

#[test]
fn a_tampered_payload_fails_the_signature() {
    let token = signed(&claims("globex", "viewer@globex.test", "viewer"));
    let parts: Vec<&str> = token.split('.').collect();
    let forged = claims("umbrella", "admin@umbrella.test", "admin");
    let payload = b64(serde_json::to_string(&forged).unwrap().as_bytes());
    let tampered = format!("{}.{payload}.{}", parts[0], parts[2]);
    assert_eq!(
        verifier().verify(&tampered, now()),
        Err(EmbedRejection::BadSignature)
    );
}

#[test]
fn alg_none_is_refused() {
    let c = claims("globex", "admin@globex.test", "admin");
    let header = b64(br#"{"alg":"none","typ":"portico-embed+jwt","kid":"ed"}"#);
    let payload = b64(serde_json::to_string(&c).unwrap().as_bytes());
    let v = verifier();
    assert!(v.verify(&format!("{header}.{payload}."), now()).is_err());
    assert!(v.verify(&format!("{header}.{payload}"), now()).is_err());
}

/// The classic confusion: an HS256 token whose "secret" is the RSA public key, which anyone
/// can read, sent under the RSA key's kid.
#[test]
fn hs256_signed_with_the_rsa_public_key_is_refused() {
    let c = claims("globex", "admin@globex.test", "admin");
    let token = mint(
        EmbedAlgorithm::HS256,
        "rsa",
        fixture("rsa.pub").as_bytes(),
        &c,
    )
    .unwrap();
    assert_eq!(
        verifier().verify(&token, now()),
        Err(EmbedRejection::WrongAlgorithm)
    );
}

#[test]
fn unknown_kid_and_other_token_types_are_refused() {
    let v = verifier();
    let c = claims("globex", "admin@globex.test", "admin");
    let token = mint(
        EmbedAlgorithm::EdDSA,
        "retired",
        fixture("ed25519.key").as_bytes(),
        &c,
    )
    .unwrap();
    assert_eq!(v.verify(&token, now()), Err(EmbedRejection::UnknownKey));

    // A plain JWT signed by the right key is still not an embed token.
    let encoding =
        jsonwebtoken::EncodingKey::from_ed_pem(fixture("ed25519.key").as_bytes()).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some("ed".into());
    let plain = jsonwebtoken::encode(&header, &c, &encoding).unwrap();
    assert_eq!(v.verify(&plain, now()), Err(EmbedRejection::WrongType));
}

#[test]
fn malformed_claims_are_refused() {
    let v = verifier();
    for (claim, edit) in [
        (
            "email",
            (|c: &mut EmbedClaims| c.email = "not-an-email".into()) as fn(&mut EmbedClaims),
        ),
        ("tenant", |c| c.tenant = "Not A Tenant!".into()),
        ("role", |c| c.role = "owner".into()),
        ("jti", |c| c.jti = String::new()),
    ] {
        let mut c = claims("globex", "admin@globex.test", "admin");
        edit(&mut c);
        assert_eq!(
            v.verify(&signed(&c), now()),
            Err(EmbedRejection::BadClaim(claim)),
            "{claim}"
        );
    }
}

#[test]
fn keys_that_do_not_load_are_reported_at_their_line() {
    let ed = fixture("ed25519.pub");
    let body = ed.lines().nth(1).unwrap();
    let broken = embed_config().replacen(body, "this is not a key", 1);
    let line = broken
        .lines()
        .position(|l| l.starts_with("kid = \"ed\""))
        .unwrap()
        + 3;
    let err = app::server::config::parse("embed.toml", &broken).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("embed.keys.0.public_key"), "{text}");
    assert!(text.contains(&format!("embed.toml:{line}:")), "{text}");

    let unframed = embed_config().replace(
        &format!("[security]\nframe_ancestors = [\"{PROVIDER_SITE}\"]\n"),
        "",
    );
    let err = app::server::config::parse("embed.toml", &unframed).unwrap_err();
    assert!(err.to_string().contains("frame_ancestors"), "{err}");

    let missing = EmbedVerifier::new(provider().embed.as_ref().unwrap(), |_| None).unwrap_err();
    assert!(missing.iter().any(|p| p.contains(HS_ENV)), "{missing:?}");
}

// ---- GET /embed over HTTP, on both stores ----

async fn a_valid_token_signs_the_member_in_inside_the_frame(engine: Engine) {
    let app = spawn(engine).await;
    let res = open(
        &app,
        &signed(&claims("globex", "ops@globex.test", "viewer")),
    )
    .await;
    assert_eq!(res.status, 303, "{}", res.body);
    let location = res.header("location").unwrap();
    assert!(
        location.starts_with("/instances#portico-session="),
        "{location}"
    );
    let set = res.header("set-cookie").unwrap();
    for attr in [
        "__Host-portico_session=",
        "Secure",
        "HttpOnly",
        "SameSite=None",
        "Partitioned",
    ] {
        assert!(set.contains(attr), "{set}");
    }
    let cookie = res.session_cookie().unwrap();
    let page = app.page(Some(&cookie), "/instances").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("globex-web"), "{}", page.body);
    assert!(
        !page.body.contains("umbrella-"),
        "another tenant's instance leaked"
    );
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains(&format!("frame-ancestors {PROVIDER_SITE}")),
        "{csp}"
    );
    // An existing member keeps the role the tenant gave them, whatever the token says.
    let me = app.call(Some(&cookie), "current_user", &[]).await.json();
    assert_eq!(me["role"], "operator");
    // Inside the frame the portal drops its own header; signed in directly it keeps it.
    assert_eq!(me["hide_header"], true);
    let direct = app
        .sign_in("ops@globex.test", app::server::demo::DEMO_PASSWORD)
        .await;
    let me = app.call(Some(&direct), "current_user", &[]).await.json();
    assert_eq!(me["hide_header"], false);
}

async fn a_token_is_accepted_once(engine: Engine) {
    let app = spawn(engine).await;
    let token = signed(&claims("globex", "admin@globex.test", "admin"));
    assert_eq!(open(&app, &token).await.status, 303);
    let again = open(&app, &token).await;
    assert_eq!(again.status, 401);
    assert!(again.body.contains("already used"), "{}", again.body);
    assert!(again.header("set-cookie").is_none());
}

async fn refused_tokens_show_a_clear_page_and_start_no_session(engine: Engine) {
    let app = spawn(engine).await;
    let mut expired = claims("globex", "admin@globex.test", "admin");
    expired.iat = now() - 400;
    expired.exp = now() - 200;
    let mut wrong_aud = claims("globex", "admin@globex.test", "admin");
    wrong_aud.aud = "elsewhere".into();
    let valid = signed(&claims("globex", "admin@globex.test", "admin"));
    let tampered = format!("{}x", &valid[..valid.len() - 1]);
    for (token, says) in [
        (signed(&expired), "expired"),
        (signed(&wrong_aud), "not valid"),
        (tampered, "not valid"),
        ("not-a-token".to_owned(), "not valid"),
    ] {
        let res = open(&app, &token).await;
        assert_eq!(res.status, 401, "{}", res.body);
        assert!(res.body.contains(says), "{}", res.body);
        assert!(res.body.contains("Request id"), "{}", res.body);
        assert!(res.header("set-cookie").is_none());
        let csp = res.header("content-security-policy").unwrap();
        assert!(
            csp.contains(&format!("frame-ancestors {PROVIDER_SITE}")),
            "{csp}"
        );
    }
    let none = app.page(None, "/embed").await;
    assert_eq!(none.status, 400);
}

async fn a_stranger_is_refused_unless_the_tenant_admits_members_just_in_time(engine: Engine) {
    let app = spawn(engine).await;
    // globex does not: no user, no membership, no session.
    let res = open(
        &app,
        &signed(&claims("globex", "new@partner.example", "operator")),
    )
    .await;
    assert_eq!(res.status, 403, "{}", res.body);
    assert!(res.header("set-cookie").is_none());
    let email = app::domain::Email::parse("new@partner.example").unwrap();
    assert!(app
        .db
        .store
        .user_credentials(&email)
        .await
        .unwrap()
        .is_none());
    // Nor does a member of one tenant get into another with a token naming it.
    let res = open(
        &app,
        &signed(&claims("umbrella", "admin@globex.test", "admin")),
    )
    .await;
    assert_eq!(res.status, 403, "{}", res.body);

    // initech does: the person becomes a member with the token's role.
    let mut c = claims("initech", "new@partner.example", "operator");
    c.name = Some("Nia New".into());
    let res = open(&app, &signed(&c)).await;
    assert_eq!(res.status, 303, "{}", res.body);
    let cookie = res.session_cookie().unwrap();
    let me = app.call(Some(&cookie), "current_user", &[]).await;
    assert!(me.body.contains("Nia New"), "{}", me.body);
    assert!(me.body.contains("operator"), "{}", me.body);
    let page = app.page(Some(&cookie), "/instances").await;
    assert!(page.body.contains("initech-"), "{}", page.body);
    // The new membership is in initech's audit log.
    let admin = app
        .sign_in("admin@initech.test", app::server::demo::DEMO_PASSWORD)
        .await;
    let log = app.member_joins(&admin).await;
    assert!(log.contains("new@partner.example"), "{}", log);
}

/// A browser marks a top-level visit `Sec-Fetch-Dest: document`; only a frame may use a token,
/// so nobody can be signed in as someone else by following a link.
async fn a_token_opened_outside_a_frame_is_refused_and_kept(engine: Engine) {
    let app = spawn(engine).await;
    let token = signed(&claims("globex", "admin@globex.test", "admin"));
    let req = axum::http::Request::get(format!("/embed?token={token}"))
        .header("sec-fetch-dest", "document")
        .body(axum::body::Body::empty())
        .unwrap();
    let res = app.send(req).await;
    assert_eq!(res.status, 403, "{}", res.body);
    assert!(res.body.contains("inside the provider"), "{}", res.body);
    assert!(res.header("set-cookie").is_none());
    // The token was not spent: the frame can still use it.
    let req = axum::http::Request::get(format!("/embed?token={token}"))
        .header("sec-fetch-dest", "iframe")
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(app.send(req).await.status, 303);
}

async fn embedding_is_off_without_its_configuration(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let res = open(
        &app,
        &signed(&claims("globex", "admin@globex.test", "admin")),
    )
    .await;
    assert_eq!(res.status, 404);
    assert!(res.header("set-cookie").is_none());
}

/// A browser that keeps no cookie for the frame: the token from the redirect's fragment,
/// sent in the session header, is the session; the page renders a signing-in placeholder
/// instead of sending the frame to the sign-in page.
async fn without_cookies_the_session_travels_with_each_call(engine: Engine) {
    let app = spawn(engine).await;
    let res = open(
        &app,
        &signed(&claims("globex", "ops@globex.test", "viewer")),
    )
    .await;
    let location = res.header("location").unwrap();
    let token = location
        .split_once("#portico-session=")
        .unwrap()
        .1
        .to_owned();
    // The page's script gets a token of its own, not the cookie's.
    let cookie = res.session_cookie().unwrap();
    let cookie_token = cookie.split_once('=').unwrap().1.to_owned();
    assert_ne!(token, cookie_token);

    let call = |token: Option<String>, name: &'static str| {
        let app = &app;
        async move {
            let mut req = axum::http::Request::post(format!("/api/{name}"))
                .header("accept", "application/json")
                .header("content-type", "application/x-www-form-urlencoded")
                .header("sec-fetch-site", "same-origin");
            if let Some(t) = token {
                req = req.header("x-portico-session", t);
            }
            app.send(
                req.body(axum::body::Body::from("environment=&status=&q="))
                    .unwrap(),
            )
            .await
        }
    };
    let me = call(Some(token.clone()), "current_user").await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.json()["tenant_name"], "Globex");
    let list = call(Some(token.clone()), "list_instances").await;
    assert!(
        list.body.contains("globex-web") && !list.body.contains("umbrella-"),
        "{}",
        list.body
    );
    assert_eq!(
        call(Some("made-up".into()), "current_user").await.status,
        401
    );
    assert_eq!(call(None, "current_user").await.status, 401);

    // The header token is short-lived, and works only in the header; the cookie's token only
    // as a cookie.
    let record = app
        .db
        .store
        .find_session(
            &app::server::auth::token_hash(&token),
            app::server::store::now_millis(),
            i64::MIN,
        )
        .await
        .unwrap()
        .unwrap();
    let lifetime = record.expires_at - record.created_at;
    assert!(lifetime <= 60 * 60 * 1000, "{lifetime} ms");
    let as_cookie = app
        .call(
            Some(&format!("__Host-portico_session={token}")),
            "current_user",
            &[],
        )
        .await;
    assert_eq!(as_cookie.status, 401);
    assert_eq!(call(Some(cookie_token), "current_user").await.status, 401);
    assert_eq!(
        app.call(Some(&cookie), "current_user", &[]).await.status,
        200
    );

    // A password session's token is a cookie's business only.
    let password = app.sign_in("ops@globex.test", "portico-demo").await;
    let password_token = password.split_once('=').unwrap().1.to_owned();
    assert_eq!(call(Some(password_token), "current_user").await.status, 401);

    // Signed out in a frame: a placeholder the page's script completes, not a redirect.
    let framed = app
        .send(
            axum::http::Request::get("/instances")
                .header("accept", "text/html")
                .header("sec-fetch-dest", "iframe")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(framed.status, 200);
    assert!(framed.body.contains("Signing in…"), "{}", framed.body);
    assert!(!framed.body.contains("globex-web"));
    let top = app.page(None, "/instances").await;
    assert_eq!(top.status, 302, "{}", top.body);

    // Signing out ends the session the header named.
    assert_eq!(call(Some(token.clone()), "sign_out").await.status, 200);
    assert_eq!(call(Some(token), "current_user").await.status, 401);
}

// ---- keys the provider publishes at a JWKS URL ----

/// The provider's key set endpoint: serves the listed keys of `fixtures/embed/jwks.json`
/// (changeable, to rotate) and counts fetches.
struct KeySite {
    url: String,
    kids: std::sync::Arc<std::sync::Mutex<Vec<&'static str>>>,
    fetches: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

async fn key_site(kids: &[&'static str]) -> KeySite {
    use std::sync::atomic::Ordering;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    let site = KeySite {
        url,
        kids: std::sync::Arc::new(std::sync::Mutex::new(kids.to_vec())),
        fetches: Default::default(),
    };
    let (published, fetches) = (site.kids.clone(), site.fetches.clone());
    let all: serde_json::Value = serde_json::from_str(&fixture("jwks.json")).unwrap();
    let router = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let kids = published.lock().unwrap().clone();
            fetches.fetch_add(1, Ordering::SeqCst);
            let keys: Vec<_> = all["keys"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|k| kids.contains(&k["kid"].as_str().unwrap()))
                .cloned()
                .collect();
            async move { axum::Json(serde_json::json!({ "keys": keys })) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    site
}

/// The demo provider, embeddable, with no inline key: only those at `jwks_url`.
fn jwks_provider(jwks_url: &str) -> app::domain::ProviderConfig {
    let toml = format!(
        "{}\n[security]\nframe_ancestors = [\"{PROVIDER_SITE}\"]\n\n\
         [embed]\nissuer = \"https://acme.example\"\naudience = \"portico\"\njwks_url = \"{jwks_url}\"\n",
        app::server::config::DEMO_CONFIG,
    );
    app::server::config::parse("embed-jwks.toml", &toml).unwrap()
}

fn signed_with(alg: EmbedAlgorithm, kid: &str, key_file: &str, c: &EmbedClaims) -> String {
    mint(alg, kid, fixture(key_file).as_bytes(), c).unwrap()
}

async fn keys_from_a_jwks_url_sign_members_in(engine: Engine) {
    let site = key_site(&["pub-ed", "pub-rsa"]).await;
    let app = TestApp::spawn_custom(engine, Settings::default(), jwks_provider(&site.url)).await;
    let c = || claims("globex", "ops@globex.test", "viewer");
    let ok = open(
        &app,
        &signed_with(EmbedAlgorithm::EdDSA, "pub-ed", "ed25519.key", &c()),
    )
    .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert!(ok.session_cookie().is_some());
    let ok = open(
        &app,
        &signed_with(EmbedAlgorithm::RS256, "pub-rsa", "rsa.key", &c()),
    )
    .await;
    assert_eq!(ok.status, 303, "{}", ok.body);

    // The published RSA key is pinned to RS256: its PEM as an HS256 secret signs nothing.
    let confused = mint(
        EmbedAlgorithm::HS256,
        "pub-rsa",
        fixture("rsa.pub").as_bytes(),
        &c(),
    )
    .unwrap();
    // A key the set does not publish, even one the provider holds.
    let unpublished = signed_with(EmbedAlgorithm::ES256, "pub-ec", "p256.key", &c());
    for token in [confused, unpublished] {
        let r = open(&app, &token).await;
        assert_eq!(r.status, 401, "{}", r.body);
        assert!(r.body.contains("not valid"), "{}", r.body);
        assert!(r.session_cookie().is_none());
    }
}

async fn an_unreachable_key_set_refuses_with_a_clear_page(engine: Engine) {
    // Nothing listens there.
    let port = common::unused_port();
    let url = format!("http://127.0.0.1:{port}/jwks.json");
    let app = TestApp::spawn_custom(engine, Settings::default(), jwks_provider(&url)).await;
    let c = claims("globex", "ops@globex.test", "viewer");
    let r = open(
        &app,
        &signed_with(EmbedAlgorithm::EdDSA, "pub-ed", "ed25519.key", &c),
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("not possible right now"), "{}", r.body);
    assert!(r.session_cookie().is_none());
}

/// The provider rotates its keys: a new `kid` fetches the set again, though not more than
/// once in ten seconds however many unknown kids arrive.
#[tokio::test]
async fn a_rotated_key_is_fetched_when_a_token_names_it() {
    use std::sync::atomic::Ordering;
    let site = key_site(&["pub-ed"]).await;
    let provider = jwks_provider(&site.url);
    let v = EmbedVerifier::new(provider.embed.as_ref().unwrap(), |_| None).unwrap();
    let c = || claims("globex", "ops@globex.test", "viewer");
    let old = signed_with(EmbedAlgorithm::EdDSA, "pub-ed", "ed25519.key", &c());
    let new = signed_with(EmbedAlgorithm::ES256, "pub-ec", "p256.key", &c());
    assert!(v.verify_fetching(&old, now()).await.is_ok());
    assert!(v.verify_fetching(&old, now()).await.is_ok());
    assert_eq!(site.fetches.load(Ordering::SeqCst), 1, "cached");

    *site.kids.lock().unwrap() = vec!["pub-ed", "pub-ec"];
    assert_eq!(
        v.verify_fetching(&new, now()).await,
        Err(EmbedRejection::UnknownKey)
    );
    assert_eq!(
        site.fetches.load(Ordering::SeqCst),
        1,
        "no fetch within ten seconds"
    );
    tokio::time::sleep(app::server::jwks::MIN_REFRESH).await;
    let id = v
        .verify_fetching(&new, now())
        .await
        .expect("the rotated key verifies");
    assert_eq!(id.email.as_str(), "ops@globex.test");
    assert_eq!(site.fetches.load(Ordering::SeqCst), 2);
    assert!(
        v.verify_fetching(&old, now()).await.is_ok(),
        "the old key still counts"
    );
}

on_both_engines!(
    without_cookies_the_session_travels_with_each_call,
    keys_from_a_jwks_url_sign_members_in,
    an_unreachable_key_set_refuses_with_a_clear_page,
    a_valid_token_signs_the_member_in_inside_the_frame,
    a_token_is_accepted_once,
    refused_tokens_show_a_clear_page_and_start_no_session,
    a_stranger_is_refused_unless_the_tenant_admits_members_just_in_time,
    embedding_is_off_without_its_configuration,
    a_token_opened_outside_a_frame_is_refused_and_kept,
);

#[test]
fn the_cli_mints_a_token_the_portal_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("provider.toml");
    std::fs::write(&cfg, embed_config()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(["mint-embed-token", "--kid", "ec", "--tenant", "globex"])
        .args([
            "--email",
            "ops@globex.test",
            "--role",
            "operator",
            "--config",
        ])
        .arg(&cfg)
        .arg("--key-file")
        .arg(format!("{FIXTURES}/p256.key"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap();
    let id = verifier().verify(token.trim(), now()).unwrap();
    assert_eq!(id.email.as_str(), "ops@globex.test");
    assert_eq!(id.role, app::domain::Role::Operator);

    let too_long = std::process::Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(["mint-embed-token", "--kid", "ec", "--tenant", "globex"])
        .args([
            "--email",
            "ops@globex.test",
            "--ttl-secs",
            "900",
            "--config",
        ])
        .arg(&cfg)
        .arg("--key-file")
        .arg(format!("{FIXTURES}/p256.key"))
        .output()
        .unwrap();
    assert!(!too_long.status.success());
    assert!(String::from_utf8_lossy(&too_long.stderr).contains("at most 300"));
}
