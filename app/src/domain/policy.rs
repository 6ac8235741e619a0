//! The one policy both sides ask: may this actor run this operation on this instance, and if
//! not, why. Pure: the UI calls it to enable or explain each action, the server calls it inside
//! the transaction that records a request, and the worker calls it again before executing.

use super::instance::Resources;
use super::lifecycle::{transition, Operation, Role, Status};
use super::provider::{Bounds, ParamValue, Plan, Roles};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// What is known about an existing instance when deciding.
#[derive(Debug, Clone, Copy)]
pub struct InstanceFacts<'a> {
    pub name: &'a str,
    pub status: Status,
    pub plan: &'a Plan,
    pub resources: Resources,
    pub parameters: &'a BTreeMap<String, ParamValue>,
    pub delete_protected: bool,
    /// Another operation on this instance is queued or running.
    pub operation_in_flight: bool,
}

/// An operation on an existing instance, with its parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(tag = "operation", rename_all = "kebab-case")]
pub enum Request {
    Stop,
    Start,
    Restart,
    Scale {
        resources: Resources,
    },
    UpdateConfig {
        changes: BTreeMap<String, ParamValue>,
    },
    Delete {
        confirm_name: String,
    },
}

impl Request {
    pub fn operation(&self) -> Operation {
        match self {
            Request::Stop => Operation::Stop,
            Request::Start => Operation::Start,
            Request::Restart => Operation::Restart,
            Request::Scale { .. } => Operation::Scale,
            Request::UpdateConfig { .. } => Operation::UpdateConfig,
            Request::Delete { .. } => Operation::Delete,
        }
    }
}

/// A request to create an instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CreateRequest {
    pub name: String,
    pub environment: String,
    pub region: String,
    pub resources: Resources,
    pub parameters: BTreeMap<String, ParamValue>,
}

/// Any lifecycle request, as recorded with its operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OperationRequest {
    Create(CreateRequest),
    Change(Request),
}

impl OperationRequest {
    pub fn operation(&self) -> Operation {
        match self {
            OperationRequest::Create(_) => Operation::Create,
            OperationRequest::Change(r) => r.operation(),
        }
    }
}

/// Why an operation is not allowed. Each condition has its own reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Denial {
    PlanDisables {
        operation: Operation,
        plan: String,
    },
    RoleForbids {
        operation: Operation,
        role: Role,
    },
    StatusForbids {
        operation: Operation,
        status: Status,
    },
    OperationInFlight,
    OutOfBounds {
        field: String,
        min: u32,
        max: u32,
    },
    StorageShrink {
        current: u32,
    },
    NotChangeable {
        parameter: String,
    },
    UnknownParameter {
        parameter: String,
    },
    InvalidValue {
        parameter: String,
        why: String,
    },
    InvalidName {
        why: String,
    },
    EnvironmentNotInPlan {
        environment: String,
    },
    RegionNotInPlan {
        region: String,
    },
    QuotaReached {
        quota: u32,
    },
    DeleteProtected,
    ConfirmationMismatch,
    /// The provider suspended the tenant: its people may look but not act.
    TenantSuspended,
}

impl Denial {
    /// The form field a denial concerns, so the UI can show it next to that field.
    pub fn field(&self) -> Option<&str> {
        match self {
            Denial::OutOfBounds { field, .. } => Some(field),
            Denial::StorageShrink { .. } => Some("storage_gib"),
            Denial::NotChangeable { parameter }
            | Denial::UnknownParameter { parameter }
            | Denial::InvalidValue { parameter, .. } => Some(parameter),
            Denial::InvalidName { .. } => Some("name"),
            Denial::EnvironmentNotInPlan { .. } => Some("environment"),
            Denial::RegionNotInPlan { .. } => Some("region"),
            Denial::ConfirmationMismatch => Some("confirm_name"),
            _ => None,
        }
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denial::PlanDisables { operation, plan } => {
                write!(f, "The {plan} plan does not include {}.", verb(*operation))
            }
            Denial::RoleForbids { operation, role } => {
                write!(f, "Your role ({role}) may not {}.", verb(*operation))
            }
            Denial::StatusForbids { operation, status } => write!(
                f,
                "Cannot {} while the instance is {}.",
                verb(*operation),
                status.as_str()
            ),
            Denial::OperationInFlight => {
                f.write_str("Another operation is in progress on this instance.")
            }
            Denial::OutOfBounds { field, min, max } => {
                write!(
                    f,
                    "{} must be between {min} and {max} on this plan.",
                    field_label(field)
                )
            }
            Denial::StorageShrink { current } => {
                write!(f, "Storage cannot shrink below its current {current} GiB.")
            }
            Denial::NotChangeable { parameter } => {
                write!(
                    f,
                    "{parameter} is managed by your provider and cannot be changed."
                )
            }
            Denial::UnknownParameter { parameter } => {
                write!(f, "{parameter} is not a parameter of this plan.")
            }
            Denial::InvalidValue { parameter, why } => write!(f, "{parameter} {why}."),
            Denial::InvalidName { why } => write!(f, "Name: {why}."),
            Denial::EnvironmentNotInPlan { environment } => {
                write!(f, "The plan does not offer the {environment} environment.")
            }
            Denial::RegionNotInPlan { region } => {
                write!(f, "The plan does not offer the {region} region.")
            }
            Denial::TenantSuspended => f.write_str(
                "Your organisation's account is suspended: you can see everything, but changes \
                 are off until your provider resumes it.",
            ),
            Denial::QuotaReached { quota } => {
                write!(
                    f,
                    "Your organisation already has the {quota} instances this plan allows."
                )
            }
            Denial::DeleteProtected => {
                f.write_str("The instance is delete-protected; ask your provider to lift it.")
            }
            Denial::ConfirmationMismatch => {
                f.write_str("Type the instance's exact name to confirm deletion.")
            }
        }
    }
}

fn verb(op: Operation) -> &'static str {
    match op {
        Operation::Create => "create instances",
        Operation::Stop => "stop",
        Operation::Start => "start",
        Operation::Restart => "restart",
        Operation::Scale => "scale",
        Operation::UpdateConfig => "update configuration",
        Operation::Delete => "delete",
    }
}

fn field_label(field: &str) -> &str {
    match field {
        "replicas" => "Replicas",
        "cpu_millicores" => "CPU (millicores)",
        "memory_mib" => "Memory (MiB)",
        "storage_gib" => "Storage (GiB)",
        other => other,
    }
}

/// Plan, role, status and in-flight checks: whether the action is available at all. The UI
/// uses this to enable a button before any parameters are chosen.
pub fn availability(
    roles: &Roles,
    role: Role,
    op: Operation,
    inst: &InstanceFacts,
) -> Result<(), Denial> {
    permitted(roles, role, op, inst.plan)?;
    // Checked before the status: a transitional status is explained best by its operation.
    if inst.operation_in_flight {
        return Err(Denial::OperationInFlight);
    }
    if !transition(op).from.contains(&inst.status) {
        return Err(Denial::StatusForbids {
            operation: op,
            status: inst.status,
        });
    }
    Ok(())
}

/// Plan and role only: what the worker re-checks for a create, and the create button's state.
pub fn permitted(roles: &Roles, role: Role, op: Operation, plan: &Plan) -> Result<(), Denial> {
    if !plan.enables(op) {
        return Err(Denial::PlanDisables {
            operation: op,
            plan: plan.name.clone(),
        });
    }
    if role == Role::Viewer || !roles.allows(role, op) {
        return Err(Denial::RoleForbids {
            operation: op,
            role,
        });
    }
    Ok(())
}

/// Every condition for an operation on an existing instance.
pub fn check(roles: &Roles, role: Role, inst: &InstanceFacts, req: &Request) -> Result<(), Denial> {
    availability(roles, role, req.operation(), inst)?;
    match req {
        Request::Stop | Request::Start | Request::Restart => Ok(()),
        Request::Scale { resources } => {
            check_resources(inst.plan, resources)?;
            if resources.storage_gib < inst.resources.storage_gib {
                return Err(Denial::StorageShrink {
                    current: inst.resources.storage_gib,
                });
            }
            Ok(())
        }
        Request::UpdateConfig { changes } => {
            for (name, value) in changes {
                check_parameter(inst.plan, name, value, false)?;
            }
            Ok(())
        }
        Request::Delete { confirm_name } => {
            if inst.delete_protected {
                return Err(Denial::DeleteProtected);
            }
            if confirm_name != inst.name {
                return Err(Denial::ConfirmationMismatch);
            }
            Ok(())
        }
    }
}

/// Every condition for creating an instance; `existing` counts the tenant's live instances on
/// this plan.
pub fn check_create(
    roles: &Roles,
    role: Role,
    plan: &Plan,
    existing: u32,
    req: &CreateRequest,
) -> Result<(), Denial> {
    permitted(roles, role, Operation::Create, plan)?;
    super::ids::InstanceName::parse(&req.name)
        .map_err(|e| Denial::InvalidName { why: e.to_string() })?;
    if !plan.environments.contains(&req.environment) {
        return Err(Denial::EnvironmentNotInPlan {
            environment: req.environment.clone(),
        });
    }
    if !plan.regions.contains(&req.region) {
        return Err(Denial::RegionNotInPlan {
            region: req.region.clone(),
        });
    }
    if existing >= plan.quota {
        return Err(Denial::QuotaReached { quota: plan.quota });
    }
    check_resources(plan, &req.resources)?;
    for (name, value) in &req.parameters {
        check_parameter(plan, name, value, true)?;
    }
    Ok(())
}

/// One parameter value against the plan: known, customer-editable, and of the right type and
/// range. A create may restate the default of a parameter the provider manages.
fn check_parameter(
    plan: &Plan,
    name: &str,
    value: &ParamValue,
    creating: bool,
) -> Result<(), Denial> {
    let Some(spec) = plan.parameters.iter().find(|p| p.name == name) else {
        return Err(Denial::UnknownParameter {
            parameter: name.to_owned(),
        });
    };
    let restates_default = creating && *value == spec.default;
    if !(spec.customer_editable || restates_default) {
        return Err(Denial::NotChangeable {
            parameter: name.to_owned(),
        });
    }
    spec.check(value).map_err(|why| Denial::InvalidValue {
        parameter: name.to_owned(),
        why,
    })
}

fn check_resources(plan: &Plan, r: &Resources) -> Result<(), Denial> {
    let b = &plan.resources;
    let within = |field: &str, bounds: &Bounds, v: u32| {
        if bounds.contains(v) {
            Ok(())
        } else {
            Err(Denial::OutOfBounds {
                field: field.into(),
                min: bounds.min,
                max: bounds.max,
            })
        }
    };
    within("replicas", &b.replicas, r.replicas)?;
    within("cpu_millicores", &b.cpu_millicores, r.cpu_millicores)?;
    within("memory_mib", &b.memory_mib, r.memory_mib)?;
    within("storage_gib", &b.storage_gib, r.storage_gib)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::provider::{ParamType, ParameterSpec, ResourceBounds};
    use proptest::prelude::*;

    fn b(min: u32, max: u32, default: u32) -> Bounds {
        Bounds { min, max, default }
    }

    fn roles() -> Roles {
        Roles {
            admin: Operation::ALL.to_vec(),
            operator: vec![
                Operation::Stop,
                Operation::Start,
                Operation::Restart,
                Operation::Scale,
                Operation::UpdateConfig,
            ],
            viewer: vec![],
        }
    }

    fn plan(ops: &[Operation]) -> Plan {
        Plan {
            id: "pro".into(),
            name: "Pro".into(),
            description: String::new(),
            operations: ops.to_vec(),
            environments: vec!["dev".into(), "production".into()],
            regions: vec!["eu-west".into()],
            quota: 3,
            resources: ResourceBounds {
                replicas: b(1, 5, 2),
                cpu_millicores: b(500, 4000, 1000),
                memory_mib: b(512, 8192, 1024),
                storage_gib: b(10, 200, 20),
            },
            parameters: vec![
                ParameterSpec {
                    name: "log_level".into(),
                    label: None,
                    kind: ParamType::Enum,
                    allowed: vec!["info".into(), "debug".into()],
                    min: None,
                    max: None,
                    default: ParamValue::Text("info".into()),
                    customer_editable: true,
                    secret: false,
                },
                ParameterSpec {
                    name: "max_connections".into(),
                    label: None,
                    kind: ParamType::Integer,
                    allowed: vec![],
                    min: Some(10),
                    max: Some(1000),
                    default: ParamValue::Int(100),
                    customer_editable: true,
                    secret: false,
                },
                ParameterSpec {
                    name: "api_key".into(),
                    label: None,
                    kind: ParamType::String,
                    allowed: vec![],
                    min: None,
                    max: None,
                    default: ParamValue::Text("s3cret".into()),
                    customer_editable: false,
                    secret: true,
                },
            ],
        }
    }

    const RES: Resources = Resources {
        replicas: 2,
        cpu_millicores: 1000,
        memory_mib: 1024,
        storage_gib: 20,
    };

    fn facts<'a>(
        plan: &'a Plan,
        params: &'a BTreeMap<String, ParamValue>,
        status: Status,
    ) -> InstanceFacts<'a> {
        InstanceFacts {
            name: "web",
            status,
            plan,
            resources: RES,
            parameters: params,
            delete_protected: false,
            operation_in_flight: false,
        }
    }

    fn scale(replicas: u32, storage_gib: u32) -> Request {
        Request::Scale {
            resources: Resources {
                replicas,
                storage_gib,
                ..RES
            },
        }
    }

    fn update(name: &str, v: ParamValue) -> Request {
        Request::UpdateConfig {
            changes: [(name.to_owned(), v)].into_iter().collect(),
        }
    }

    #[test]
    fn table_of_conditions_on_existing_instances() {
        use Status::*;
        let all = plan(&Operation::ALL);
        let no_scale = plan(&[Operation::Stop, Operation::Start, Operation::Restart]);
        let p = BTreeMap::new();
        struct Case<'a> {
            name: &'a str,
            plan: &'a Plan,
            role: Role,
            status: Status,
            in_flight: bool,
            protected: bool,
            req: Request,
            want: Result<(), Denial>,
        }
        let c = |name, plan, role, status, req, want| Case {
            name,
            plan,
            role,
            status,
            in_flight: false,
            protected: false,
            req,
            want,
        };
        let cases = vec![
            c(
                "operator stops running",
                &all,
                Role::Operator,
                Running,
                Request::Stop,
                Ok(()),
            ),
            c(
                "admin starts stopped",
                &all,
                Role::Admin,
                Stopped,
                Request::Start,
                Ok(()),
            ),
            c(
                "restart a failed instance",
                &all,
                Role::Operator,
                Failed,
                Request::Restart,
                Ok(()),
            ),
            c(
                "plan without scale",
                &no_scale,
                Role::Admin,
                Running,
                scale(3, 20),
                Err(Denial::PlanDisables {
                    operation: Operation::Scale,
                    plan: "Pro".into(),
                }),
            ),
            c(
                "viewer may not stop",
                &all,
                Role::Viewer,
                Running,
                Request::Stop,
                Err(Denial::RoleForbids {
                    operation: Operation::Stop,
                    role: Role::Viewer,
                }),
            ),
            c(
                "operator may not delete",
                &all,
                Role::Operator,
                Running,
                Request::Delete {
                    confirm_name: "web".into(),
                },
                Err(Denial::RoleForbids {
                    operation: Operation::Delete,
                    role: Role::Operator,
                }),
            ),
            c(
                "no stop while stopped",
                &all,
                Role::Admin,
                Stopped,
                Request::Stop,
                Err(Denial::StatusForbids {
                    operation: Operation::Stop,
                    status: Stopped,
                }),
            ),
            c(
                "no stop while deleting",
                &all,
                Role::Admin,
                Deleting,
                Request::Stop,
                Err(Denial::StatusForbids {
                    operation: Operation::Stop,
                    status: Deleting,
                }),
            ),
            c(
                "no start while running",
                &all,
                Role::Admin,
                Running,
                Request::Start,
                Err(Denial::StatusForbids {
                    operation: Operation::Start,
                    status: Running,
                }),
            ),
            c(
                "scale within bounds",
                &all,
                Role::Operator,
                Running,
                scale(5, 20),
                Ok(()),
            ),
            c(
                "scale a stopped instance",
                &all,
                Role::Operator,
                Stopped,
                scale(1, 30),
                Ok(()),
            ),
            c(
                "replicas above max",
                &all,
                Role::Operator,
                Running,
                scale(6, 20),
                Err(Denial::OutOfBounds {
                    field: "replicas".into(),
                    min: 1,
                    max: 5,
                }),
            ),
            c(
                "replicas below min",
                &all,
                Role::Operator,
                Running,
                scale(0, 20),
                Err(Denial::OutOfBounds {
                    field: "replicas".into(),
                    min: 1,
                    max: 5,
                }),
            ),
            c(
                "cpu above max",
                &all,
                Role::Operator,
                Running,
                Request::Scale {
                    resources: Resources {
                        cpu_millicores: 4001,
                        ..RES
                    },
                },
                Err(Denial::OutOfBounds {
                    field: "cpu_millicores".into(),
                    min: 500,
                    max: 4000,
                }),
            ),
            c(
                "memory below min",
                &all,
                Role::Operator,
                Running,
                Request::Scale {
                    resources: Resources {
                        memory_mib: 256,
                        ..RES
                    },
                },
                Err(Denial::OutOfBounds {
                    field: "memory_mib".into(),
                    min: 512,
                    max: 8192,
                }),
            ),
            c(
                "storage never shrinks",
                &all,
                Role::Operator,
                Running,
                scale(2, 15),
                Err(Denial::StorageShrink { current: 20 }),
            ),
            c(
                "storage above max",
                &all,
                Role::Operator,
                Running,
                scale(2, 201),
                Err(Denial::OutOfBounds {
                    field: "storage_gib".into(),
                    min: 10,
                    max: 200,
                }),
            ),
            c(
                "editable parameter in range",
                &all,
                Role::Operator,
                Running,
                update("max_connections", ParamValue::Int(500)),
                Ok(()),
            ),
            c(
                "enum value allowed",
                &all,
                Role::Operator,
                Running,
                update("log_level", ParamValue::Text("debug".into())),
                Ok(()),
            ),
            c(
                "integer out of range",
                &all,
                Role::Operator,
                Running,
                update("max_connections", ParamValue::Int(5000)),
                Err(Denial::InvalidValue {
                    parameter: "max_connections".into(),
                    why: "must be between 10 and 1000".into(),
                }),
            ),
            c(
                "enum value not allowed",
                &all,
                Role::Operator,
                Running,
                update("log_level", ParamValue::Text("trace".into())),
                Err(Denial::InvalidValue {
                    parameter: "log_level".into(),
                    why: "must be one of: info, debug".into(),
                }),
            ),
            c(
                "wrong type",
                &all,
                Role::Operator,
                Running,
                update("max_connections", ParamValue::Text("many".into())),
                Err(Denial::InvalidValue {
                    parameter: "max_connections".into(),
                    why: "must be an integer".into(),
                }),
            ),
            c(
                "provider-managed parameter",
                &all,
                Role::Admin,
                Running,
                update("api_key", ParamValue::Text("x".into())),
                Err(Denial::NotChangeable {
                    parameter: "api_key".into(),
                }),
            ),
            c(
                "unknown parameter",
                &all,
                Role::Admin,
                Running,
                update("nope", ParamValue::Bool(true)),
                Err(Denial::UnknownParameter {
                    parameter: "nope".into(),
                }),
            ),
            c(
                "delete with the exact name",
                &all,
                Role::Admin,
                Stopped,
                Request::Delete {
                    confirm_name: "web".into(),
                },
                Ok(()),
            ),
            c(
                "delete with a wrong name",
                &all,
                Role::Admin,
                Running,
                Request::Delete {
                    confirm_name: "Web".into(),
                },
                Err(Denial::ConfirmationMismatch),
            ),
            Case {
                in_flight: true,
                ..c(
                    "operation in flight",
                    &all,
                    Role::Admin,
                    Running,
                    Request::Restart,
                    Err(Denial::OperationInFlight),
                )
            },
            Case {
                protected: true,
                ..c(
                    "delete-protected",
                    &all,
                    Role::Admin,
                    Running,
                    Request::Delete {
                        confirm_name: "web".into(),
                    },
                    Err(Denial::DeleteProtected),
                )
            },
        ];
        for case in cases {
            let mut f = facts(case.plan, &p, case.status);
            f.operation_in_flight = case.in_flight;
            f.delete_protected = case.protected;
            assert_eq!(
                check(&roles(), case.role, &f, &case.req),
                case.want,
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn table_of_conditions_on_create() {
        let all = plan(&Operation::ALL);
        let no_create = plan(&[Operation::Stop]);
        let ok = CreateRequest {
            name: "new-one".into(),
            environment: "dev".into(),
            region: "eu-west".into(),
            resources: RES,
            parameters: BTreeMap::new(),
        };
        let with = |f: &dyn Fn(&mut CreateRequest)| {
            let mut r = ok.clone();
            f(&mut r);
            r
        };
        // (name, plan, role, instances already on the plan, request, expected)
        type Case<'a> = (
            &'a str,
            &'a Plan,
            Role,
            u32,
            CreateRequest,
            Result<(), Denial>,
        );
        let cases: Vec<Case> = vec![
            ("admin creates", &all, Role::Admin, 0, ok.clone(), Ok(())),
            ("plan without create", &no_create, Role::Admin, 0, ok.clone(),
             Err(Denial::PlanDisables { operation: Operation::Create, plan: "Pro".into() })),
            ("operator may not create", &all, Role::Operator, 0, ok.clone(),
             Err(Denial::RoleForbids { operation: Operation::Create, role: Role::Operator })),
            ("viewer may not create", &all, Role::Viewer, 0, ok.clone(),
             Err(Denial::RoleForbids { operation: Operation::Create, role: Role::Viewer })),
            ("quota reached", &all, Role::Admin, 3, ok.clone(), Err(Denial::QuotaReached { quota: 3 })),
            ("environment not in plan", &all, Role::Admin, 0, with(&|r| r.environment = "staging".into()),
             Err(Denial::EnvironmentNotInPlan { environment: "staging".into() })),
            ("region not in plan", &all, Role::Admin, 0, with(&|r| r.region = "us-east".into()),
             Err(Denial::RegionNotInPlan { region: "us-east".into() })),
            ("bad name", &all, Role::Admin, 0, with(&|r| r.name = "Bad Name".into()),
             Err(Denial::InvalidName { why: "instance name may contain only lowercase letters, digits and '-', and must start with a letter or digit".into() })),
            ("replicas out of bounds", &all, Role::Admin, 0, with(&|r| r.resources.replicas = 9),
             Err(Denial::OutOfBounds { field: "replicas".into(), min: 1, max: 5 })),
            ("provider-managed parameter changed", &all, Role::Admin, 0,
             with(&|r| { r.parameters.insert("api_key".into(), ParamValue::Text("mine".into())); }),
             Err(Denial::NotChangeable { parameter: "api_key".into() })),
            ("editable parameter set", &all, Role::Admin, 0,
             with(&|r| { r.parameters.insert("log_level".into(), ParamValue::Text("debug".into())); }), Ok(())),
        ];
        for (name, plan, role, existing, req, want) in cases {
            assert_eq!(
                check_create(&roles(), role, plan, existing, &req),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn every_denial_reads_as_a_sentence() {
        let d = Denial::OutOfBounds {
            field: "replicas".into(),
            min: 1,
            max: 5,
        };
        assert_eq!(
            d.to_string(),
            "Replicas must be between 1 and 5 on this plan."
        );
        assert_eq!(d.field(), Some("replicas"));
        let d = Denial::StatusForbids {
            operation: Operation::Stop,
            status: Status::Stopped,
        };
        assert_eq!(d.to_string(), "Cannot stop while the instance is stopped.");
        assert_eq!(Denial::OperationInFlight.field(), None);
    }

    fn any_status() -> impl Strategy<Value = Status> {
        proptest::sample::select(Status::ALL.to_vec())
    }

    fn any_role() -> impl Strategy<Value = Role> {
        proptest::sample::select(Role::ALL.to_vec())
    }

    fn any_request() -> impl Strategy<Value = Request> {
        let res = (0u32..30, 0u32..20_000, 0u32..100_000, 0u32..3000).prop_map(
            |(replicas, cpu_millicores, memory_mib, storage_gib)| Resources {
                replicas,
                cpu_millicores,
                memory_mib,
                storage_gib,
            },
        );
        prop_oneof![
            Just(Request::Stop),
            Just(Request::Start),
            Just(Request::Restart),
            res.prop_map(|resources| Request::Scale { resources }),
            (
                proptest::sample::select(vec!["log_level", "max_connections", "api_key", "other"]),
                -10i64..5000
            )
                .prop_map(|(n, v)| update(n, ParamValue::Int(v))),
            "[a-z]{1,4}".prop_map(|confirm_name| Request::Delete { confirm_name }),
        ]
    }

    proptest! {
        #[test]
        fn no_request_escapes_the_rules(
            role in any_role(),
            status in any_status(),
            req in any_request(),
            in_flight in any::<bool>(),
            ops in proptest::sample::subsequence(Operation::ALL.to_vec(), 0..=7),
        ) {
            let plan = plan(&ops);
            let p = BTreeMap::new();
            let mut f = facts(&plan, &p, status);
            f.operation_in_flight = in_flight;
            if check(&roles(), role, &f, &req).is_ok() {
                let op = req.operation();
                prop_assert_ne!(role, Role::Viewer, "a viewer acted");
                prop_assert!(plan.enables(op));
                prop_assert!(!in_flight);
                prop_assert!(transition(op).from.contains(&status), "{} from {}", op, status);
                if let Request::Scale { resources: r } = &req {
                    let b = &plan.resources;
                    prop_assert!(b.replicas.contains(r.replicas) && b.cpu_millicores.contains(r.cpu_millicores));
                    prop_assert!(b.memory_mib.contains(r.memory_mib) && b.storage_gib.contains(r.storage_gib));
                    prop_assert!(r.storage_gib >= RES.storage_gib);
                }
                if let Request::UpdateConfig { changes } = &req {
                    for (name, v) in changes {
                        let spec = plan.parameters.iter().find(|s| &s.name == name).unwrap();
                        prop_assert!(spec.customer_editable && spec.check(v).is_ok());
                    }
                }
            }
        }
    }
}
