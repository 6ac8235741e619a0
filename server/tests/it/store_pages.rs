//! Reading long lists a page at a time, on both engines: the pages of a list (filtered or not,
//! read forward or back) hold every row exactly once, and a key never reaches across tenants.

use crate::common;

use app::domain::{InstanceFilter, InstanceId, Resources, Status, TenantId};
use app::server::store::{
    new_id, now_millis, AuditEvent, AuditFilter, InstanceRecord, Seek, Slice, Store, TenantScope,
};
use common::{Engine, TestDb};
use std::collections::BTreeMap;

/// More pages than any walk here needs: a store that repeats a page fails instead of looping.
const PAGES_MAX: usize = 60;

fn scope(t: &str) -> TenantScope {
    TenantScope::for_tests(TenantId::parse(t).unwrap())
}

fn instance(tenant: &str, name: &str, environment: &str, status: Status) -> InstanceRecord {
    InstanceRecord {
        id: InstanceId::parse(&new_id()).unwrap(),
        tenant_id: TenantId::parse(tenant).unwrap(),
        name: name.into(),
        plan_id: "pro".into(),
        environment: environment.into(),
        region: "eu-west".into(),
        status,
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
        // The same instant for every row: only the key may order them.
        created_at: 1_700_000_000_000,
        updated_at: 1_700_000_000_000,
        external_id: None,
        observed_at: None,
        missing_since: None,
    }
}

/// Two tenants whose instance names interleave: alpha holds 23 live ones (in two environments,
/// three statuses, with and without "api" in the name) and a deleted one; beta holds names
/// that sort between alpha's.
async fn seeded(engine: Engine) -> TestDb {
    let db = TestDb::new(engine).await;
    for t in ["alpha", "beta"] {
        db.store
            .create_tenant(&TenantId::parse(t).unwrap(), t, "pro", now_millis())
            .await
            .unwrap();
    }
    let statuses = [Status::Running, Status::Stopped, Status::Failed];
    for n in 0..23 {
        let name = if n % 4 == 0 {
            format!("svc-{n:02}-api")
        } else {
            format!("svc-{n:02}")
        };
        let env = if n % 2 == 0 { "production" } else { "staging" };
        let i = instance("alpha", &name, env, statuses[n % 3]);
        db.store.insert_instance(&scope("alpha"), &i).await.unwrap();
        let theirs = instance("beta", &format!("svc-{n:02}-b"), env, Status::Running);
        db.store
            .insert_instance(&scope("beta"), &theirs)
            .await
            .unwrap();
    }
    let gone = instance("alpha", "svc-05-gone", "production", Status::Deleted);
    db.store
        .insert_instance(&scope("alpha"), &gone)
        .await
        .unwrap();
    db
}

/// The names on one page of alpha's list, and whether more lie beyond.
async fn names(store: &Store, f: &InstanceFilter, at: Seek<String>, limit: usize) -> Slice<String> {
    let (slice, _) = store
        .instance_page(&scope("alpha"), f, &at, limit)
        .await
        .unwrap();
    Slice {
        rows: slice.rows.into_iter().map(|i| i.name).collect(),
        more: slice.more,
    }
}

/// Every page from the first, following each page's last key; then every page back from the
/// last row, following each page's first key. Both must spell out the whole list.
async fn walk(store: &Store, f: &InstanceFilter, limit: usize) -> (Vec<String>, Vec<String>) {
    let mut forward = Vec::new();
    let mut at = Seek::First;
    for _ in 0..=PAGES_MAX {
        let page = names(store, f, at, limit).await;
        assert!(page.rows.len() <= limit);
        assert!(
            !page.more || page.rows.len() == limit,
            "a short page says more"
        );
        forward.extend(page.rows.iter().cloned());
        match (page.more, page.rows.last()) {
            (true, Some(last)) => at = Seek::After(last.clone()),
            _ => break,
        }
    }
    let Some(last) = forward.last() else {
        return (forward, Vec::new());
    };
    let mut backward = vec![last.clone()];
    let mut at = Seek::Before(last.clone());
    for _ in 0..=PAGES_MAX {
        let page = names(store, f, at, limit).await;
        backward.splice(0..0, page.rows.iter().cloned());
        match (page.more, page.rows.first()) {
            (true, Some(first)) => at = Seek::Before(first.clone()),
            _ => break,
        }
    }
    (forward, backward)
}

async fn instance_pages_partition_the_list_under_every_filter(engine: Engine) {
    let db = seeded(engine).await;
    let filters = [
        InstanceFilter::default(),
        InstanceFilter::from_query("production", "", ""),
        InstanceFilter::from_query("", "stopped", ""),
        InstanceFilter::from_query("", "", "API"),
        InstanceFilter::from_query("staging", "running", "svc"),
        InstanceFilter::from_query("", "", "nothing-matches"),
    ];
    let all = db.store.list_instances(&scope("alpha")).await.unwrap();
    for f in &filters {
        // What the filter selects from the whole list, in the engine's own order.
        let expected: Vec<String> = all
            .iter()
            .filter(|i| f.environment.as_deref().is_none_or(|e| e == i.environment))
            .filter(|i| f.status.is_none_or(|s| s == i.status))
            .filter(|i| {
                f.q.as_deref()
                    .is_none_or(|q| i.name.contains(&q.to_ascii_lowercase()))
            })
            .map(|i| i.name.clone())
            .collect();
        for limit in [1, 4, 5, 23, 50] {
            let (forward, backward) = walk(&db.store, f, limit).await;
            assert_eq!(forward, expected, "{f:?}, {limit} a page, forward");
            assert_eq!(backward, expected, "{f:?}, {limit} a page, backward");
        }
        let (_, total) = db
            .store
            .instance_page(&scope("alpha"), f, &Seek::First, 5)
            .await
            .unwrap();
        assert_eq!(total, expected.len() as u64, "{f:?}: the count");
    }
    assert_eq!(all.len(), 23, "the deleted instance is on no page");
    assert!(all.iter().all(|i| i.name != "svc-05-gone"));
}

async fn a_key_from_another_tenants_list_shows_only_this_tenants_rows(engine: Engine) {
    let db = seeded(engine).await;
    let theirs = db.store.list_instances(&scope("beta")).await.unwrap();
    let key = theirs[10].name.clone();
    let f = InstanceFilter::default();
    for at in [Seek::After(key.clone()), Seek::Before(key.clone())] {
        let page = names(&db.store, &f, at.clone(), 50).await;
        assert!(!page.rows.is_empty(), "{at:?}");
        assert!(
            page.rows.iter().all(|n| !n.ends_with("-b")),
            "{at:?}: {:?}",
            page.rows
        );
    }

    // Audit positions are shared by every tenant's events: beta's mark a place in alpha's log.
    let events = audit_fixture(&db.store).await;
    let beta_seq = events.beta_seqs[3];
    for at in [Seek::After(beta_seq), Seek::Before(beta_seq)] {
        let page = db
            .store
            .audit_slice(&scope("alpha"), &AuditFilter::default(), &at, 50)
            .await
            .unwrap();
        assert!(!page.rows.is_empty(), "{at:?}");
        assert!(page.rows.iter().all(|(_, e)| e.tenant_id == "alpha"));
    }
}

struct AuditFixture {
    beta_seqs: Vec<i64>,
}

/// 30 events for alpha and 10 for beta, interleaved, all at the same millisecond.
async fn audit_fixture(store: &Store) -> AuditFixture {
    let outcomes = ["succeeded", "denied", "failed"];
    for n in 0..40 {
        let tenant = if n % 4 == 3 { "beta" } else { "alpha" };
        store
            .record_audit(&AuditEvent {
                id: new_id(),
                tenant_id: tenant.into(),
                user_id: None,
                actor_email: Some(format!("user{}@x.test", n % 2)),
                role: Some("admin".into()),
                instance_id: None,
                instance_name: None,
                operation_id: None,
                operation: Some("restart".into()),
                parameters: format!("{{\"n\":{n}}}"),
                outcome: outcomes[n % 3].into(),
                reason: None,
                request_id: None,
                created_at: 1_700_000_000_000,
            })
            .await
            .unwrap();
    }
    let beta_seqs = store
        .audit_page(&scope("beta"), &AuditFilter::default(), None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|(seq, _)| seq)
        .collect();
    AuditFixture { beta_seqs }
}

async fn audit_pages_partition_the_log_under_every_filter(engine: Engine) {
    let db = seeded(engine).await;
    audit_fixture(&db.store).await;
    let filters = [
        AuditFilter::default(),
        AuditFilter {
            outcome: Some("denied".into()),
            ..Default::default()
        },
        AuditFilter {
            user: Some("user1@x.test".into()),
            outcome: Some("succeeded".into()),
            ..Default::default()
        },
    ];
    for f in &filters {
        let all = db
            .store
            .audit_page(&scope("alpha"), f, None, 1000)
            .await
            .unwrap();
        let expected: Vec<i64> = all.iter().map(|(seq, _)| *seq).collect();
        assert!(expected.windows(2).all(|w| w[0] > w[1]), "newest first");
        assert!(!expected.is_empty());
        for limit in [1, 4, 7, 50] {
            let mut older = Vec::new();
            let mut at = Seek::First;
            for _ in 0..=PAGES_MAX {
                let page = db
                    .store
                    .audit_slice(&scope("alpha"), f, &at, limit)
                    .await
                    .unwrap();
                older.extend(page.rows.iter().map(|(seq, _)| *seq));
                match (page.more, page.rows.last()) {
                    (true, Some((seq, _))) => at = Seek::After(*seq),
                    _ => break,
                }
            }
            assert_eq!(older, expected, "{f:?}, {limit} a page, to older");
            let mut newer = Vec::new();
            let mut at = Seek::Before(0);
            for _ in 0..=PAGES_MAX {
                let page = db
                    .store
                    .audit_slice(&scope("alpha"), f, &at, limit)
                    .await
                    .unwrap();
                newer.splice(0..0, page.rows.iter().map(|(seq, _)| *seq));
                match (page.more, page.rows.first()) {
                    (true, Some((seq, _))) => at = Seek::Before(*seq),
                    _ => break,
                }
            }
            assert_eq!(newer, expected, "{f:?}, {limit} a page, to newer");
        }
    }
}

on_both_engines!(
    instance_pages_partition_the_list_under_every_filter,
    a_key_from_another_tenants_list_shows_only_this_tenants_rows,
    audit_pages_partition_the_log_under_every_filter,
);
