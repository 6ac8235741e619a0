//! One suite, both engines: every store implementation must behave the same.

use crate::common;

use app::domain::{Email, Endpoint, InstanceId, ParamValue, Resources, Role, Status, TenantId};
use app::server::store::{
    new_id, now_millis, AuditFilter, InstanceRecord, NewSession, StoreError, TenantScope,
};
use common::{Engine, TestDb};
use std::collections::BTreeMap;

fn scope(t: &str) -> TenantScope {
    TenantScope::for_tests(TenantId::parse(t).unwrap())
}

fn instance(tenant: &str, name: &str) -> InstanceRecord {
    let mut parameters = BTreeMap::new();
    parameters.insert("log_level".to_owned(), ParamValue::Text("debug".into()));
    parameters.insert("max_connections".to_owned(), ParamValue::Int(250));
    parameters.insert("maintenance_mode".to_owned(), ParamValue::Bool(true));
    InstanceRecord {
        id: InstanceId::parse(&new_id()).unwrap(),
        tenant_id: TenantId::parse(tenant).unwrap(),
        name: name.into(),
        plan_id: "pro".into(),
        environment: "staging".into(),
        region: "eu-west".into(),
        status: Status::Running,
        status_reason: Some("because".into()),
        resources: Resources {
            replicas: 3,
            cpu_millicores: 1500,
            memory_mib: 2048,
            storage_gib: 40,
        },
        parameters,
        endpoints: vec![Endpoint {
            label: "HTTPS".into(),
            url: format!("https://{name}.example"),
        }],
        delete_protected: true,
        version: 7,
        created_at: 1_700_000_000_000,
        updated_at: 1_700_000_360_000,
        external_id: None,
        observed_at: None,
        missing_since: None,
    }
}

async fn with_two_tenants(engine: Engine) -> TestDb {
    let db = TestDb::new(engine).await;
    for t in ["alpha", "beta"] {
        db.store
            .create_tenant(&TenantId::parse(t).unwrap(), t, "pro", now_millis())
            .await
            .unwrap();
    }
    db
}

async fn migrations_can_run_twice(engine: Engine) {
    let db = TestDb::new(engine).await;
    db.store
        .migrate()
        .await
        .expect("second migration run is a no-op");
    db.store.ping().await.unwrap();
}

async fn instance_round_trips_every_field(engine: Engine) {
    let db = with_two_tenants(engine).await;
    let i = instance("alpha", "web");
    db.store.insert_instance(&scope("alpha"), &i).await.unwrap();
    let back = db.store.get_instance(&scope("alpha"), &i.id).await.unwrap();
    assert_eq!(back, Some(i));
}

async fn instances_are_visible_only_to_their_tenant(engine: Engine) {
    let db = with_two_tenants(engine).await;
    let a = instance("alpha", "web");
    let b = instance("beta", "web");
    db.store.insert_instance(&scope("alpha"), &a).await.unwrap();
    db.store.insert_instance(&scope("beta"), &b).await.unwrap();
    let alpha: Vec<_> = db.store.list_instances(&scope("alpha")).await.unwrap();
    assert_eq!(alpha, vec![a.clone()]);
    assert_eq!(
        db.store.get_instance(&scope("alpha"), &b.id).await.unwrap(),
        None
    );
    assert_eq!(
        db.store
            .get_instance(&scope("beta"), &a.id)
            .await
            .unwrap()
            .map(|i| i.id),
        None
    );
}

async fn inserting_into_another_tenants_scope_is_refused(engine: Engine) {
    let db = with_two_tenants(engine).await;
    let err = db
        .store
        .insert_instance(&scope("beta"), &instance("alpha", "web"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert!(db
        .store
        .list_instances(&scope("alpha"))
        .await
        .unwrap()
        .is_empty());
    assert!(db
        .store
        .list_instances(&scope("beta"))
        .await
        .unwrap()
        .is_empty());
}

async fn instance_names_are_unique_per_tenant(engine: Engine) {
    let db = with_two_tenants(engine).await;
    db.store
        .insert_instance(&scope("alpha"), &instance("alpha", "web"))
        .await
        .unwrap();
    let err = db
        .store
        .insert_instance(&scope("alpha"), &instance("alpha", "web"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(ref m) if m.contains("name")),
        "{err:?}"
    );
    db.store
        .insert_instance(&scope("beta"), &instance("beta", "web"))
        .await
        .expect("same name, other tenant");
}

async fn list_is_sorted_by_name_and_hides_deleted(engine: Engine) {
    let db = with_two_tenants(engine).await;
    for name in ["zeta", "alpha-1", "mid"] {
        db.store
            .insert_instance(&scope("alpha"), &instance("alpha", name))
            .await
            .unwrap();
    }
    let mut gone = instance("alpha", "gone");
    gone.status = Status::Deleted;
    db.store
        .insert_instance(&scope("alpha"), &gone)
        .await
        .unwrap();
    let names: Vec<_> = db
        .store
        .list_instances(&scope("alpha"))
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(names, ["alpha-1", "mid", "zeta"]);
}

async fn users_are_unique_by_email(engine: Engine) {
    let db = TestDb::new(engine).await;
    let email = Email::parse("a@x.test").unwrap();
    let now = now_millis();
    db.store
        .create_user(&email, "A", Some("hash"), now)
        .await
        .unwrap();
    let err = db
        .store
        .create_user(&email, "A again", None, now)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let creds = db.store.user_credentials(&email).await.unwrap().unwrap();
    assert_eq!(creds.password_hash.as_deref(), Some("hash"));
    assert!(!creds.disabled);
    assert_eq!(
        db.store
            .user_credentials(&Email::parse("b@x.test").unwrap())
            .await
            .unwrap(),
        None
    );
}

async fn membership_role_can_change(engine: Engine) {
    let db = with_two_tenants(engine).await;
    let now = now_millis();
    let u = db
        .store
        .create_user(&Email::parse("m@x.test").unwrap(), "M", None, now)
        .await
        .unwrap();
    db.store
        .set_membership(&scope("alpha"), &u, Role::Viewer, now)
        .await
        .unwrap();
    db.store
        .set_membership(&scope("alpha"), &u, Role::Operator, now + 1)
        .await
        .unwrap();
    let m = db.store.memberships(&u).await.unwrap();
    assert_eq!(m, vec![(TenantId::parse("alpha").unwrap(), Role::Operator)]);
}

async fn sessions_resolve_until_they_expire_or_end(engine: Engine) {
    let db = with_two_tenants(engine).await;
    let now = now_millis();
    let u = db
        .store
        .create_user(&Email::parse("s@x.test").unwrap(), "S", None, now)
        .await
        .unwrap();
    db.store
        .set_membership(&scope("beta"), &u, Role::Admin, now)
        .await
        .unwrap();
    let new = |id: &str, expires_at| NewSession {
        session_id: id.into(),
        user_id: u.clone(),
        tenant_id: TenantId::parse("beta").unwrap(),
        origin: app::domain::SessionOrigin::Password,
        now,
        expires_at,
    };
    db.store
        .create_session(&new("live", now + 60_000))
        .await
        .unwrap();
    db.store.create_session(&new("old", now - 1)).await.unwrap();

    let s = db
        .store
        .find_session("live", now, now - 60_000)
        .await
        .unwrap()
        .expect("live session");
    assert_eq!(
        (s.tenant_id.as_str(), s.role, s.email.as_str()),
        ("beta", Role::Admin, "s@x.test")
    );
    assert_eq!(
        db.store
            .find_session("old", now, now - 60_000)
            .await
            .unwrap(),
        None,
        "past absolute expiry"
    );
    assert_eq!(
        db.store.find_session("live", now, now + 1).await.unwrap(),
        None,
        "idle past the cutoff"
    );
    assert_eq!(
        db.store
            .find_session("nope", now, now - 60_000)
            .await
            .unwrap(),
        None
    );

    assert_eq!(
        db.store
            .delete_stale_sessions(now, now - 60_000)
            .await
            .unwrap(),
        1
    );
    db.store.delete_session("live").await.unwrap();
    assert_eq!(
        db.store
            .find_session("live", now, now - 60_000)
            .await
            .unwrap(),
        None
    );
}

async fn session_ends_when_account_is_disabled(engine: Engine) {
    let db = with_two_tenants(engine).await;
    let email = Email::parse("d@x.test").unwrap();
    let now = now_millis();
    let u = db.store.create_user(&email, "D", None, now).await.unwrap();
    db.store
        .set_membership(&scope("alpha"), &u, Role::Operator, now)
        .await
        .unwrap();
    db.store
        .create_session(&NewSession {
            session_id: "s1".into(),
            user_id: u.clone(),
            tenant_id: TenantId::parse("alpha").unwrap(),
            origin: app::domain::SessionOrigin::Password,
            now,
            expires_at: now + 60_000,
        })
        .await
        .unwrap();
    assert!(db
        .store
        .find_session("s1", now, now - 1000)
        .await
        .unwrap()
        .is_some());
    db.store.set_user_disabled(&u, true, now).await.unwrap();
    assert_eq!(
        db.store.find_session("s1", now, now - 1000).await.unwrap(),
        None
    );
    assert!(
        db.store
            .user_credentials(&email)
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
}

async fn a_password_change_ends_the_users_sessions_at_once(engine: Engine) {
    let db = with_two_tenants(engine).await;
    let email = Email::parse("pw@alpha.test").unwrap();
    let now = now_millis();
    let u = db
        .store
        .create_user(&email, "P", Some("old-hash"), now)
        .await
        .unwrap();
    let other = db
        .store
        .create_user(&Email::parse("keep@alpha.test").unwrap(), "K", None, now)
        .await
        .unwrap();
    for (id, user) in [("p1", &u), ("p2", &u), ("k1", &other)] {
        db.store
            .set_membership(&scope("alpha"), user, Role::Viewer, now)
            .await
            .unwrap();
        db.store
            .create_session(&NewSession {
                session_id: id.into(),
                user_id: user.clone(),
                tenant_id: TenantId::parse("alpha").unwrap(),
                origin: app::domain::SessionOrigin::Password,
                now,
                expires_at: now + 60_000,
            })
            .await
            .unwrap();
    }
    assert_eq!(
        db.store
            .set_password(&u, Some("new-hash"), now)
            .await
            .unwrap(),
        2
    );
    for id in ["p1", "p2"] {
        assert_eq!(
            db.store.find_session(id, now, now - 1000).await.unwrap(),
            None
        );
    }
    assert!(
        db.store
            .find_session("k1", now, now - 1000)
            .await
            .unwrap()
            .is_some(),
        "other users stay signed in"
    );
    let creds = db.store.user_credentials(&email).await.unwrap().unwrap();
    assert_eq!(creds.password_hash.as_deref(), Some("new-hash"));
}

async fn tenants_are_counted_and_found(engine: Engine) {
    let db = with_two_tenants(engine).await;
    assert_eq!(db.store.count_tenants().await.unwrap(), 2);
    assert!(db
        .store
        .tenant_exists(&TenantId::parse("alpha").unwrap())
        .await
        .unwrap());
    assert!(!db
        .store
        .tenant_exists(&TenantId::parse("gamma").unwrap())
        .await
        .unwrap());
    let t = db.store.tenant(&scope("beta")).await.unwrap();
    assert_eq!((t.name.as_str(), t.plan_id.as_str()), ("beta", "pro"));
    let err = db
        .store
        .create_tenant(
            &TenantId::parse("alpha").unwrap(),
            "dup",
            "pro",
            now_millis(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)));
}

async fn joining_a_tenant_adds_the_member_and_one_audit_event(engine: Engine) {
    let db = with_two_tenants(engine).await;
    let u = db
        .store
        .create_user(&Email::parse("j@x.test").unwrap(), "J", None, now_millis())
        .await
        .unwrap();
    let store = &db.store;
    let joins = || async move {
        store
            .list_audit(&scope("alpha"), &AuditFilter::default(), 100)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.operation.as_deref() == Some("member-join"))
            .collect::<Vec<_>>()
    };
    let now = now_millis();
    assert!(db
        .store
        .join_tenant(
            &scope("alpha"),
            &u,
            "j@x.test",
            Role::Operator,
            "by a rule",
            now
        )
        .await
        .unwrap());
    assert_eq!(
        db.store.memberships(&u).await.unwrap(),
        vec![(TenantId::parse("alpha").unwrap(), Role::Operator)]
    );
    let events = joins().await;
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(
        (
            e.user_id.as_deref(),
            e.actor_email.as_deref(),
            e.role.as_deref(),
            e.outcome.as_str(),
            e.reason.as_deref(),
            e.created_at,
        ),
        (
            Some(u.as_str()),
            Some("j@x.test"),
            Some("operator"),
            "succeeded",
            Some("by a rule"),
            now,
        )
    );

    // A second call (or a race with another first visit) adds neither, nor changes the role.
    assert!(!db
        .store
        .join_tenant(
            &scope("alpha"),
            &u,
            "j@x.test",
            Role::Admin,
            "again",
            now + 1
        )
        .await
        .unwrap());
    assert_eq!(
        db.store.memberships(&u).await.unwrap(),
        vec![(TenantId::parse("alpha").unwrap(), Role::Operator)]
    );
    assert_eq!(joins().await.len(), 1);
    assert!(db
        .store
        .list_audit(&scope("beta"), &AuditFilter::default(), 100)
        .await
        .unwrap()
        .is_empty());
}

/// The store keeps the time its caller gives it: a member joins, and a role change is
/// audited, at the pinned `now`s, not at whatever the clock says when the store runs.
async fn writes_record_the_time_they_are_given(engine: Engine) {
    let db = with_two_tenants(engine).await;
    let t0 = 1_600_000_000_000;
    let admin = db
        .store
        .create_user(&Email::parse("boss@x.test").unwrap(), "B", None, t0)
        .await
        .unwrap();
    let member = db
        .store
        .create_user(&Email::parse("w@x.test").unwrap(), "W", None, t0)
        .await
        .unwrap();
    db.store
        .set_membership(&scope("alpha"), &admin, Role::Admin, t0)
        .await
        .unwrap();
    db.store
        .set_membership(&scope("alpha"), &member, Role::Viewer, t0 + 1)
        .await
        .unwrap();
    let actor = app::server::store::Actor {
        user_id: admin.clone(),
        email: "boss@x.test".into(),
        role: Role::Admin,
        request_id: None,
    };
    db.store
        .change_member_role(&scope("alpha"), &actor, &member, Role::Operator, t0 + 5)
        .await
        .unwrap();
    let members = db.store.list_members(&scope("alpha")).await.unwrap();
    let since: Vec<_> = members
        .iter()
        .map(|m| (m.email.as_str(), m.since))
        .collect();
    assert_eq!(since, [("boss@x.test", t0), ("w@x.test", t0 + 1)]);
    let events: Vec<_> = db
        .store
        .list_audit(&scope("alpha"), &AuditFilter::default(), 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.operation.as_deref() == Some("member-role"))
        .map(|e| e.created_at)
        .collect();
    assert_eq!(events, [t0 + 5]);
}

on_both_engines!(
    writes_record_the_time_they_are_given,
    joining_a_tenant_adds_the_member_and_one_audit_event,
    a_password_change_ends_the_users_sessions_at_once,
    migrations_can_run_twice,
    instance_round_trips_every_field,
    instances_are_visible_only_to_their_tenant,
    inserting_into_another_tenants_scope_is_refused,
    instance_names_are_unique_per_tenant,
    list_is_sorted_by_name_and_hides_deleted,
    users_are_unique_by_email,
    membership_role_can_change,
    sessions_resolve_until_they_expire_or_end,
    session_ends_when_account_is_disabled,
    tenants_are_counted_and_found,
);
