//! The provider's control plane, behind one interface the worker drives.
//!
//! The embedded default is [`Simulated`]: it takes a configurable time per step and can be told
//! to fail a fraction of steps or to hang, for tests and demos. A driver that calls the
//! provider's own control plane over HTTP implements the same trait; the worker and the policy
//! do not change.

use crate::domain::{Endpoint, InstanceId, ParamValue, Resources};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What the driver is asked to do. Carries everything it needs, so a remote driver needs no
/// access to Portico's database.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Provision {
        instance: InstanceId,
        name: String,
        environment: String,
        region: String,
        resources: Resources,
        parameters: BTreeMap<String, ParamValue>,
    },
    Stop {
        instance: InstanceId,
    },
    Start {
        instance: InstanceId,
    },
    Restart {
        instance: InstanceId,
    },
    Scale {
        instance: InstanceId,
        resources: Resources,
    },
    UpdateConfig {
        instance: InstanceId,
        parameters: BTreeMap<String, ParamValue>,
    },
    Delete {
        instance: InstanceId,
    },
}

/// What a successful command reports back.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Applied {
    /// New endpoints, when the command changes them (provisioning).
    pub endpoints: Option<Vec<Endpoint>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    /// Worth retrying: a timeout, a 5xx, a flaky step.
    #[error("{0}")]
    Transient(String),
    /// Retrying will not help: the control plane refused the command.
    #[error("{0}")]
    Permanent(String),
}

pub type DriverFuture<'a> = Pin<Box<dyn Future<Output = Result<Applied, DriverError>> + Send + 'a>>;

/// A control plane. `execute` must be idempotent: the worker runs each operation at least once
/// and may repeat a command whose result it never recorded.
pub trait ControlPlane: Send + Sync + 'static {
    fn execute<'a>(&'a self, command: &'a Command) -> DriverFuture<'a>;
}

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

/// The built-in control plane: no real infrastructure, realistic timing.
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
    fn execute<'a>(&'a self, command: &'a Command) -> DriverFuture<'a> {
        Box::pin(async move {
            if self.settings.hang {
                std::future::pending::<()>().await;
            }
            if !self.settings.step.is_zero() {
                tokio::time::sleep(self.settings.step).await;
            }
            if self.should_fail() {
                return Err(DriverError::Transient(
                    "simulated control plane: step failed".into(),
                ));
            }
            Ok(match command {
                Command::Provision { name, region, .. } => Applied {
                    endpoints: Some(vec![Endpoint {
                        label: "HTTPS".into(),
                        url: format!("https://{name}.{region}.acme.example"),
                    }]),
                },
                _ => Applied::default(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stop() -> Command {
        Command::Stop {
            instance: InstanceId::parse("i-1").unwrap(),
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
            if sim.execute(&stop()).await.is_err() {
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
        let cmd = Command::Provision {
            instance: InstanceId::parse("i-2").unwrap(),
            name: "web".into(),
            environment: "dev".into(),
            region: "eu-west".into(),
            resources: Resources {
                replicas: 1,
                cpu_millicores: 500,
                memory_mib: 512,
                storage_gib: 10,
            },
            parameters: BTreeMap::new(),
        };
        let applied = sim.execute(&cmd).await.unwrap();
        assert_eq!(
            applied.endpoints.unwrap()[0].url,
            "https://web.eu-west.acme.example"
        );
    }

    #[tokio::test]
    async fn a_hanging_control_plane_never_answers() {
        let sim = Simulated::new(SimulatedSettings {
            hang: true,
            ..Default::default()
        });
        let r = tokio::time::timeout(Duration::from_millis(50), sim.execute(&stop())).await;
        assert!(r.is_err(), "expected no answer");
    }
}
