//! The built-in control plane: no real infrastructure, realistic timing. It answers every
//! command synchronously (the contract's `200`), after a configurable time, and can be told to
//! fail a fraction of commands or to hang, for tests and demos.

use super::contract::{
    InstancePage, OperationCommand, OperationReport, OperationType, ReportedState,
};
use super::{Answer, ControlPlane, DriverError, DriverFuture, ListFuture};
use crate::domain::lifecycle::Observed;
use crate::domain::Endpoint;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Settings of the simulated control plane.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatedSettings {
    /// Time each command takes.
    pub step: Duration,
    /// Fraction (0.0–1.0) of commands that fail transiently.
    pub failure_rate: f64,
    /// Never answer (to exercise leases and timeouts).
    pub hang: bool,
}

impl Default for SimulatedSettings {
    fn default() -> Self {
        SimulatedSettings {
            step: Duration::from_secs(3),
            failure_rate: 0.0,
            hang: false,
        }
    }
}

/// The built-in control plane.
pub struct Simulated {
    settings: SimulatedSettings,
    counter: AtomicU64,
}

impl Simulated {
    pub fn new(settings: SimulatedSettings) -> Arc<Self> {
        Arc::new(Simulated {
            settings,
            counter: AtomicU64::new(0),
        })
    }

    /// Deterministic spread of failures: the n-th command fails when the running failure
    /// budget crosses an integer, so a rate of 0.25 fails exactly one command in four.
    fn should_fail(&self) -> bool {
        let rate = self.settings.failure_rate.clamp(0.0, 1.0);
        let n = self.counter.fetch_add(1, Ordering::Relaxed) as f64;
        ((n + 1.0) * rate).floor() > (n * rate).floor()
    }
}

impl ControlPlane for Simulated {
    fn execute<'a>(&'a self, command: &'a OperationCommand) -> DriverFuture<'a> {
        Box::pin(async move {
            if self.settings.hang {
                std::future::pending::<()>().await;
            }
            if !self.settings.step.is_zero() {
                tokio::time::sleep(self.settings.step).await;
            }
            if self.should_fail() {
                return Err(DriverError::transient(
                    "simulated control plane: step failed",
                ));
            }
            let endpoints = (command.kind == OperationType::Create).then(|| {
                let i = &command.instance;
                vec![Endpoint {
                    label: "HTTPS".into(),
                    url: format!("https://{}.{}.acme.example", i.name, i.region),
                }]
            });
            Ok(Answer::Finished(OperationReport {
                state: ReportedState::Succeeded,
                message: None,
                percent: None,
                instance: Some(Observed {
                    endpoints,
                    ..Observed::default()
                }),
            }))
        })
    }

    /// Never asked: every command is answered when it is sent.
    fn poll<'a>(&'a self, _operation_id: &'a str) -> DriverFuture<'a> {
        Box::pin(async { Ok(Answer::Unknown) })
    }

    /// It keeps no instances of its own: Portico's records are the only ones.
    fn instances<'a>(&'a self, _cursor: Option<&'a str>) -> ListFuture<'a> {
        Box::pin(async {
            Ok(InstancePage {
                instances: Vec::new(),
                next_cursor: None,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::contract::{CommandInstance, RequestedBy, TenantRef};
    use super::*;
    use crate::domain::Resources;
    use std::collections::BTreeMap;

    fn command(kind: OperationType) -> OperationCommand {
        OperationCommand {
            operation_id: "op-1".into(),
            kind,
            instance: CommandInstance {
                id: "i-1".into(),
                external_id: None,
                tenant: TenantRef {
                    id: "t-1".into(),
                    name: "Tenant".into(),
                },
                name: "web".into(),
                plan: "starter".into(),
                environment: "dev".into(),
                region: "eu-west".into(),
                resources: Resources {
                    replicas: 1,
                    cpu_millicores: 500,
                    memory_mib: 512,
                    storage_gib: 10,
                },
                parameters: BTreeMap::new(),
            },
            requested_by: RequestedBy::Provider,
            requested_at: "2026-12-07T00:00:00Z".into(),
            deadline: "2026-12-07T01:00:00Z".into(),
        }
    }

    #[tokio::test]
    async fn failure_rate_fails_that_fraction_of_commands() {
        let sim = Simulated::new(SimulatedSettings {
            step: Duration::ZERO,
            failure_rate: 0.25,
            hang: false,
        });
        let mut failed = 0;
        for _ in 0..100 {
            if sim.execute(&command(OperationType::Stop)).await.is_err() {
                failed += 1;
            }
        }
        assert_eq!(failed, 25);
    }

    #[tokio::test]
    async fn provisioning_reports_an_endpoint() {
        let sim = Simulated::new(SimulatedSettings {
            step: Duration::ZERO,
            ..Default::default()
        });
        let answer = sim.execute(&command(OperationType::Create)).await.unwrap();
        let Answer::Finished(report) = answer else {
            panic!("the simulator answers at once: {answer:?}");
        };
        assert_eq!(report.state, ReportedState::Succeeded);
        let endpoints = report.instance.unwrap().endpoints.unwrap();
        assert_eq!(endpoints[0].url, "https://web.eu-west.acme.example");
    }

    #[tokio::test]
    async fn a_hanging_control_plane_never_answers() {
        let sim = Simulated::new(SimulatedSettings {
            hang: true,
            ..Default::default()
        });
        let stop = command(OperationType::Stop);
        let r = tokio::time::timeout(Duration::from_millis(50), sim.execute(&stop)).await;
        assert!(r.is_err(), "expected no answer");
    }
}
