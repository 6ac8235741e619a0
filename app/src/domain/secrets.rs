//! Secret values: whatever a page shows, the audit log records or a log line prints, a secret
//! is replaced by the one [`MASK`].

use super::policy::{CreateRequest, OperationRequest, Request};
use super::{ParamValue, Plan};
use std::collections::BTreeMap;

/// What stands in for a secret wherever it would be shown, recorded or logged.
pub const MASK: &str = "[redacted]";

/// Whether the plan marks parameter `name` secret. Without a plan nothing is known to be
/// secret.
pub fn is_secret(plan: Option<&Plan>, name: &str) -> bool {
    plan.is_some_and(|p| p.parameters.iter().any(|s| s.name == name && s.secret))
}

/// A parameter's value as a person may see it: [`MASK`] for a secret.
pub fn shown(plan: Option<&Plan>, name: &str, value: &ParamValue) -> String {
    if is_secret(plan, name) {
        MASK.to_owned()
    } else {
        value.to_string()
    }
}

/// The parameters with each secret value replaced by [`MASK`].
pub fn mask_secrets(
    plan: Option<&Plan>,
    params: &BTreeMap<String, ParamValue>,
) -> BTreeMap<String, ParamValue> {
    params
        .iter()
        .map(|(k, v)| {
            let v = if is_secret(plan, k) {
                ParamValue::Text(MASK.into())
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect()
}

/// The request as it may be recorded: the parameters of a create and the changes of an
/// update-config with their secret values masked; other requests carry none.
pub fn mask_request(plan: Option<&Plan>, request: &OperationRequest) -> OperationRequest {
    match request {
        OperationRequest::Change(Request::UpdateConfig { changes }) => {
            OperationRequest::Change(Request::UpdateConfig {
                changes: mask_secrets(plan, changes),
            })
        }
        OperationRequest::Create(c) => OperationRequest::Create(CreateRequest {
            parameters: mask_secrets(plan, &c.parameters),
            ..c.clone()
        }),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Bounds, ParamType, ParameterSpec, ResourceBounds, Resources};

    fn spec(name: &str, secret: bool) -> ParameterSpec {
        ParameterSpec {
            name: name.into(),
            label: None,
            kind: ParamType::String,
            allowed: vec![],
            min: None,
            max: None,
            default: ParamValue::Text(String::new()),
            customer_editable: true,
            secret,
        }
    }

    fn plan() -> Plan {
        Plan {
            id: "pro".into(),
            name: "Pro".into(),
            description: String::new(),
            operations: vec![],
            environments: vec![],
            regions: vec![],
            quota: 1,
            resources: ResourceBounds {
                replicas: Bounds::fixed(1),
                cpu_millicores: Bounds::fixed(500),
                memory_mib: Bounds::fixed(512),
                storage_gib: Bounds::fixed(10),
            },
            parameters: vec![spec("api_key", true), spec("log_level", false)],
        }
    }

    fn params() -> BTreeMap<String, ParamValue> {
        BTreeMap::from([
            ("api_key".to_string(), ParamValue::Text("s3cret".into())),
            ("log_level".to_string(), ParamValue::Text("debug".into())),
            ("unknown".to_string(), ParamValue::Int(7)),
        ])
    }

    #[test]
    fn only_parameters_the_plan_marks_secret_are_masked() {
        let plan = plan();
        let masked = mask_secrets(Some(&plan), &params());
        assert_eq!(masked["api_key"], ParamValue::Text(MASK.into()));
        assert_eq!(masked["log_level"], ParamValue::Text("debug".into()));
        assert_eq!(masked["unknown"], ParamValue::Int(7));
        assert_eq!(
            shown(Some(&plan), "api_key", &ParamValue::Text("s3cret".into())),
            MASK
        );
        assert_eq!(shown(Some(&plan), "unknown", &ParamValue::Int(7)), "7");
    }

    #[test]
    fn without_a_plan_nothing_is_known_to_be_secret() {
        assert_eq!(mask_secrets(None, &params()), params());
        assert!(!is_secret(None, "api_key"));
    }

    #[test]
    fn requests_are_masked_where_they_carry_parameters() {
        let plan = plan();
        let update = OperationRequest::Change(Request::UpdateConfig { changes: params() });
        let OperationRequest::Change(Request::UpdateConfig { changes }) =
            mask_request(Some(&plan), &update)
        else {
            panic!("still an update-config")
        };
        assert_eq!(changes["api_key"], ParamValue::Text(MASK.into()));

        let create = OperationRequest::Create(CreateRequest {
            name: "db".into(),
            environment: "dev".into(),
            region: "eu".into(),
            resources: Resources {
                replicas: 1,
                cpu_millicores: 500,
                memory_mib: 512,
                storage_gib: 10,
            },
            parameters: params(),
        });
        let json = serde_json::to_string(&mask_request(Some(&plan), &create)).unwrap();
        assert!(!json.contains("s3cret"), "{json}");
        assert!(json.contains(MASK), "{json}");

        let stop = OperationRequest::Change(Request::Stop);
        assert_eq!(mask_request(Some(&plan), &stop), stop);
    }
}
