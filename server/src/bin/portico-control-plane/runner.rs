//! What every route shares, and how an accepted operation runs: progress along the delay, then
//! completion, each reported by callback (async mode) or in the answer (sync mode).

use crate::callbacks::{now_millis, Notifier};
use crate::faults::FaultQueue;
use crate::model::{Settings, State};
use crate::persist;
use app::server::control_plane::contract::{OperationEvent, OperationReport};
use app::server::control_plane::signature::Keyring;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Answer 200 with the result once the operation is done.
    Sync,
    /// Answer 202 at once and report by callback.
    Async,
}

pub struct Shared {
    pub mode: Mode,
    pub settings: Settings,
    pub progress_steps: u32,
    /// Verifies the commands Portico signs.
    pub keys: Keyring,
    pub state: Mutex<State>,
    pub state_file: Option<PathBuf>,
    pub faults: Mutex<FaultQueue>,
    pub notifier: Notifier,
}

pub type Cp = &'static Shared;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    /// Reads the state.
    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&lock(&self.state))
    }

    /// Changes the state and rewrites the state file (under the lock, so writes keep order).
    pub fn change<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut state = lock(&self.state);
        let out = f(&mut state);
        if let Some(path) = &self.state_file {
            if let Err(e) = persist::save(path, &state) {
                tracing::error!(error = format!("{e:#}"), "cannot save the state file");
            }
        }
        out
    }

    pub fn faults(&self) -> MutexGuard<'_, FaultQueue> {
        lock(&self.faults)
    }

    /// `Retry-After` for an operation in progress: the delay in whole seconds, plus one.
    pub fn retry_after_secs(&self) -> u64 {
        self.settings.delay_ms.div_ceil(1000) + 1
    }
}

/// Completes an operation and, when `notify`, sends its final callback.
fn finish(cp: Cp, op_id: &str, notify: bool) -> Option<OperationReport> {
    let (seq, report) = cp.change(|s| s.complete(op_id))?;
    tracing::info!(operation_id = op_id, state = ?report.state, "operation finished");
    if notify {
        cp.notifier.operation_event(
            op_id,
            OperationEvent {
                seq,
                report: report.clone(),
            },
        );
    }
    Some(report)
}

/// Sync mode: waits the delay and completes; the report to answer with.
pub async fn run_sync(cp: Cp, op_id: String) -> Option<OperationReport> {
    tokio::time::sleep(Duration::from_millis(cp.settings.delay_ms)).await;
    finish(cp, &op_id, false)
}

/// Async mode: progress callbacks spread over the delay, then the final one.
pub async fn run_async(cp: Cp, op_id: String) {
    let start = Instant::now();
    let delay = cp.settings.delay_ms;
    let steps = cp.progress_steps;
    for step in 1..=steps {
        let at = delay * u64::from(step) / (u64::from(steps) + 1);
        tokio::time::sleep_until(start + Duration::from_millis(at)).await;
        if let Some((seq, report)) = cp.change(|s| s.progress(&op_id, step, steps)) {
            cp.notifier
                .operation_event(&op_id, OperationEvent { seq, report });
        }
    }
    tokio::time::sleep_until(start + Duration::from_millis(delay)).await;
    finish(cp, &op_id, true);
}

/// After a restart: operations left in progress complete when due and report by callback.
pub fn resume(cp: Cp) {
    let unfinished = cp.read(State::unfinished);
    for (op_id, due_at_ms) in unfinished {
        let wait = u64::try_from(due_at_ms - now_millis()).unwrap_or(0);
        tracing::info!(operation_id = %op_id, wait_ms = wait, "resuming an operation");
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(wait)).await;
            finish(cp, &op_id, true);
        });
    }
}
