//! Demo tenants, users and instances for the embedded default. Never loaded into a deployment
//! that has its own configuration unless asked for with `--demo`.

use super::password::Passwords;
use super::store::{now_millis, InstanceRecord, Store, TenantScope};
use crate::domain::{
    Email, Endpoint, InstanceId, ParamValue, ProviderConfig, Resources, Role, Status, TenantId,
};
use std::collections::BTreeMap;

pub const DEMO_PASSWORD: &str = "portico-demo";

pub const DEMO_USERS: [(&str, &str, &str, Role); 5] = [
    ("admin@globex.test", "Grace Admin", "globex", Role::Admin),
    (
        "ops@globex.test",
        "Oscar Operator",
        "globex",
        Role::Operator,
    ),
    ("viewer@globex.test", "Vera Viewer", "globex", Role::Viewer),
    ("admin@initech.test", "Ida Admin", "initech", Role::Admin),
    ("admin@umbrella.test", "Uma Admin", "umbrella", Role::Admin),
];

const TENANTS: [(&str, &str, &str); 3] = [
    ("globex", "Globex", "pro"),
    ("initech", "Initech", "free"),
    ("umbrella", "Umbrella", "enterprise"),
];

/// (tenant, name, environment, region, status, replicas)
const INSTANCES: [(&str, &str, &str, &str, Status, u32); 11] = [
    (
        "globex",
        "globex-web",
        "production",
        "eu-west",
        Status::Running,
        3,
    ),
    (
        "globex",
        "globex-api",
        "production",
        "us-east",
        Status::Running,
        2,
    ),
    (
        "globex",
        "globex-staging",
        "staging",
        "eu-west",
        Status::Stopped,
        1,
    ),
    ("globex", "globex-dev", "dev", "eu-west", Status::Running, 1),
    (
        "globex",
        "globex-reports",
        "dev",
        "us-east",
        Status::Failed,
        1,
    ),
    (
        "initech",
        "initech-sandbox",
        "dev",
        "eu-west",
        Status::Running,
        1,
    ),
    (
        "initech",
        "initech-trial",
        "dev",
        "eu-west",
        Status::Stopped,
        1,
    ),
    (
        "umbrella",
        "umbrella-core",
        "production",
        "eu-west",
        Status::Running,
        6,
    ),
    (
        "umbrella",
        "umbrella-lab",
        "staging",
        "us-east",
        Status::Running,
        3,
    ),
    (
        "umbrella",
        "umbrella-research",
        "dev",
        "us-east",
        Status::Running,
        2,
    ),
    (
        "umbrella",
        "umbrella-archive",
        "production",
        "us-east",
        Status::Stopped,
        2,
    ),
];

/// Loads the demo data unless a tenant already exists; returns whether it loaded anything.
pub async fn seed(store: &Store, provider: &ProviderConfig) -> anyhow::Result<bool> {
    if store.count_tenants().await? > 0 {
        return Ok(false);
    }
    let now = now_millis();
    for (id, name, plan) in TENANTS {
        anyhow::ensure!(
            provider.plan(plan).is_some(),
            "the demo needs a plan named {plan}"
        );
        store
            .create_tenant(&TenantId::parse(id)?, name, plan, now)
            .await?;
    }
    let hash = Passwords::default().hash(DEMO_PASSWORD.into()).await?;
    for (email, display, tenant, role) in DEMO_USERS {
        let user = store
            .create_user(&Email::parse(email)?, display, Some(&hash), now)
            .await?;
        store
            .set_membership(
                &TenantScope::provider(TenantId::parse(tenant)?),
                &user,
                role,
                now,
            )
            .await?;
    }
    for (n, (tenant, name, env, region, status, replicas)) in INSTANCES.into_iter().enumerate() {
        let plan_id = TENANTS
            .iter()
            .find(|t| t.0 == tenant)
            .map(|t| t.2)
            .unwrap_or("free");
        let plan = provider.plan(plan_id).expect("checked above");
        let r = &plan.resources;
        let parameters: BTreeMap<String, ParamValue> = plan
            .parameters
            .iter()
            .map(|p| (p.name.clone(), p.default.clone()))
            .collect();
        // Spread creation times so that lists and timestamps look lived-in.
        let created_at = now - (n as i64 + 1) * 86_400_000;
        let record = InstanceRecord {
            id: InstanceId::parse(&super::store::new_id())?,
            tenant_id: TenantId::parse(tenant)?,
            name: name.into(),
            plan_id: plan_id.into(),
            environment: env.into(),
            region: region.into(),
            status,
            status_reason: (status == Status::Failed)
                .then(|| "Health check failed after deploy: container exited with code 137".into()),
            resources: Resources {
                replicas: replicas.clamp(r.replicas.min, r.replicas.max),
                cpu_millicores: r.cpu_millicores.default,
                memory_mib: r.memory_mib.default,
                storage_gib: r.storage_gib.default,
            },
            parameters,
            endpoints: vec![Endpoint {
                label: "HTTPS".into(),
                url: format!("https://{name}.{region}.acme.example"),
            }],
            delete_protected: env == "production",
            version: 1,
            created_at,
            updated_at: created_at + 3_600_000,
            external_id: None,
            observed_at: None,
            missing_since: None,
        };
        store
            .insert_instance(&TenantScope::provider(record.tenant_id.clone()), &record)
            .await?;
    }
    Ok(true)
}
