//! Long lists over HTTP: the instance list and the audit log come a page at a time, through the
//! server functions and as plain links in the pages, with the filters kept.

use crate::common;

use app::domain::{InstanceId, Resources, Status, TenantId};
use app::server::store::{new_id, AuditEvent, InstanceRecord, TenantScope};
use common::{Engine, TestApp};
use serde_json::Value;
use std::collections::BTreeMap;

const PW: &str = "portico-demo";

/// Globex's five demo instances and 120 more, `bulk-000` to `bulk-119`.
async fn globex_with_125_instances(engine: Engine) -> TestApp {
    let app = TestApp::spawn(engine).await;
    let scope = TenantScope::for_tests(TenantId::parse("globex").unwrap());
    for n in 0..120 {
        let i = InstanceRecord {
            id: InstanceId::parse(&new_id()).unwrap(),
            tenant_id: TenantId::parse("globex").unwrap(),
            name: format!("bulk-{n:03}"),
            plan_id: "pro".into(),
            environment: "staging".into(),
            region: "eu-west".into(),
            status: Status::Running,
            status_reason: None,
            resources: Resources {
                replicas: 1,
                cpu_millicores: 500,
                memory_mib: 512,
                storage_gib: 10,
            },
            parameters: BTreeMap::new(),
            endpoints: vec![],
            delete_protected: false,
            version: 1,
            created_at: 1_700_000_000_000,
            updated_at: 1_700_000_000_000,
            external_id: None,
            observed_at: None,
            missing_since: None,
        };
        app.db.store.insert_instance(&scope, &i).await.unwrap();
    }
    app
}

async fn list(app: &TestApp, cookie: &str, q: &str, after: &str, before: &str) -> Value {
    let res = app
        .call(
            Some(cookie),
            "list_instances",
            &[
                ("environment", ""),
                ("status", ""),
                ("q", q),
                ("after", after),
                ("before", before),
            ],
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    res.json()
}

fn names(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_owned())
        .collect()
}

fn cursor(page: &Value, which: &str) -> Option<String> {
    page[which].as_str().map(str::to_owned)
}

async fn following_next_reaches_every_instance_once(engine: Engine) {
    let app = globex_with_125_instances(engine).await;
    let cookie = app.sign_in("viewer@globex.test", PW).await;
    let first = list(&app, &cookie, "", "", "").await;
    assert_eq!(names(&first).len(), 50, "a full first page");
    assert_eq!(first["total"], 125);
    assert_eq!(
        first["previous"],
        Value::Null,
        "nothing before the first page"
    );
    let mut pages = vec![first];
    while let Some(next) = cursor(pages.last().unwrap(), "next") {
        pages.push(list(&app, &cookie, "", &next, "").await);
        assert!(pages.len() <= 3, "125 instances fill three pages");
    }
    let seen: Vec<String> = pages.iter().flat_map(names).collect();
    let mut expected: Vec<String> = (0..120).map(|n| format!("bulk-{n:03}")).collect();
    expected.extend(
        [
            "globex-api",
            "globex-dev",
            "globex-reports",
            "globex-staging",
            "globex-web",
        ]
        .map(String::from),
    );
    assert_eq!(seen, expected, "every instance once, by name");

    // And back: the previous page of the last is the second, whose previous is the first.
    let back = list(
        &app,
        &cookie,
        "",
        "",
        &cursor(&pages[2], "previous").unwrap(),
    )
    .await;
    assert_eq!(names(&back), names(&pages[1]));
    let front = list(&app, &cookie, "", "", &cursor(&back, "previous").unwrap()).await;
    assert_eq!(names(&front), names(&pages[0]));
    assert_eq!(front["previous"], Value::Null);
}

/// The `href` of the page's link with `rel="…"`, unescaped.
fn link(html: &str, rel: &str) -> Option<String> {
    let end = html.find(&format!("rel=\"{rel}\""))?;
    let start = html[..end].rfind("href=\"")? + "href=\"".len();
    let href = &html[start..end];
    Some(href[..href.find('"')?].replace("&amp;", "&"))
}

async fn the_pages_link_to_each_other_and_keep_the_filters(engine: Engine) {
    let app = globex_with_125_instances(engine).await;
    let cookie = app.sign_in("ops@globex.test", PW).await;
    let first = app.page(Some(&cookie), "/instances?q=bulk").await;
    assert_eq!(first.status, 200);
    assert!(
        first.body.contains("Showing 50 of 120 instances"),
        "{}",
        first.body
    );
    assert!(link(&first.body, "prev").is_none());
    let next = link(&first.body, "next").expect("a link to the next page");
    assert!(next.starts_with("/instances?q=bulk&after="), "{next}");
    let second = app.page(Some(&cookie), &next).await;
    assert_eq!(second.status, 200);
    assert!(second.body.contains("bulk-050") && !second.body.contains("bulk-049"));
    assert!(
        !second.body.contains("globex-web"),
        "the filter holds on page two"
    );
    let previous = link(&second.body, "prev").expect("a link back");
    assert!(
        previous.starts_with("/instances?q=bulk&before="),
        "{previous}"
    );
    let back = app.page(Some(&cookie), &previous).await;
    assert!(back.body.contains("bulk-000") && back.body.contains("bulk-049"));
}

async fn a_damaged_page_link_is_a_bad_request_that_says_so(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let cookie = app.sign_in("admin@globex.test", PW).await;
    for (after, before) in [("not a cursor!", ""), ("", "%%%"), ("Z2xvYmV4", "Z2xvYmV4")] {
        let res = app
            .call(
                Some(&cookie),
                "list_instances",
                &[
                    ("environment", ""),
                    ("status", ""),
                    ("q", ""),
                    ("after", after),
                    ("before", before),
                ],
            )
            .await;
        assert_eq!(res.status, 400, "{after:?} {before:?}: {}", res.body);
        assert_eq!(res.json(), Value::from("BadPageLink"));
    }
    let page = app.page(Some(&cookie), "/instances?after=%21%21").await;
    assert_eq!(page.status, 400);
    assert!(
        page.body
            .contains("This page link is damaged or out of date"),
        "{}",
        page.body
    );
    // The audit log's cursors are positions: a well-formed cursor of anything else is refused.
    let res = app
        .call(
            Some(&cookie),
            "audit_log",
            &[
                ("instance_id", ""),
                ("operation", ""),
                ("user", ""),
                ("outcome", ""),
                ("after", "Z2xvYmV4"),
            ],
        )
        .await;
    assert_eq!(res.status, 400, "{}", res.body);
}

async fn audit(app: &TestApp, cookie: &str, after: &str, before: &str) -> Value {
    let res = app
        .call(
            Some(cookie),
            "audit_log",
            &[
                ("instance_id", ""),
                ("operation", "restart"),
                ("user", ""),
                ("outcome", ""),
                ("after", after),
                ("before", before),
            ],
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    res.json()
}

async fn the_audit_log_pages_from_newest_to_oldest(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    for n in 0..70 {
        let tenant = if n % 10 == 9 { "umbrella" } else { "globex" };
        app.db
            .store
            .record_audit(&AuditEvent {
                id: new_id(),
                tenant_id: tenant.into(),
                user_id: None,
                actor_email: Some("ops@globex.test".into()),
                role: Some("operator".into()),
                instance_id: None,
                instance_name: None,
                operation_id: None,
                operation: Some("restart".into()),
                parameters: format!("{{\"n\":{n}}}"),
                outcome: "succeeded".into(),
                reason: None,
                request_id: None,
                created_at: 1_700_000_000_000,
            })
            .await
            .unwrap();
    }
    let cookie = app.sign_in("admin@globex.test", PW).await;
    let params = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["parameters"].as_str().unwrap().to_owned())
            .collect()
    };
    let newest = audit(&app, &cookie, "", "").await;
    assert_eq!(params(&newest).len(), 50);
    assert_eq!(params(&newest)[0], "{\"n\":68}", "newest first");
    assert_eq!(newest["previous"], Value::Null);
    let older = audit(&app, &cookie, &cursor(&newest, "next").unwrap(), "").await;
    assert_eq!(
        params(&older).len(),
        13,
        "63 of globex's, 50 on the first page"
    );
    assert_eq!(params(&older).last().unwrap(), "{\"n\":0}");
    assert_eq!(older["next"], Value::Null);
    let back = audit(&app, &cookie, "", &cursor(&older, "previous").unwrap()).await;
    assert_eq!(params(&back), params(&newest));
}

on_both_engines!(
    following_next_reaches_every_instance_once,
    the_pages_link_to_each_other_and_keep_the_filters,
    a_damaged_page_link_is_a_bad_request_that_says_so,
    the_audit_log_pages_from_newest_to_oldest,
);
