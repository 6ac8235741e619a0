//! The state file: the whole state as JSON, rewritten atomically (a temporary file beside it,
//! then a rename) after each change, and read at start.

use crate::model::State;
use anyhow::Context;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The state in `path`, or an empty one when there is no file yet.
pub fn load(path: &Path) -> anyhow::Result<State> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a state file of this program", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn temporary(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "state".into());
    name.push(".tmp");
    path.with_file_name(name)
}

/// Writes `state` to `path` so a reader sees the old file or the new one, never half of one.
pub fn save(path: &Path, state: &State) -> anyhow::Result<()> {
    let json = serde_json::to_vec_pretty(state).context("cannot encode the state")?;
    let tmp = temporary(path);
    let mut file =
        std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    file.write_all(&json)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    drop(file);
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::command;
    use crate::model::Settings;
    use app::server::control_plane::contract::OperationType;

    #[test]
    fn the_state_survives_a_round_trip_through_its_file() {
        let dir = std::env::temp_dir().join(format!(
            "portico-cp-test-{}-{}",
            std::process::id(),
            app::server::store::new_id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.json");
        assert_eq!(load(&path).unwrap(), State::default());

        let mut state = State::default();
        let settings = Settings {
            delay_ms: 100,
            failure_rate: 0.0,
        };
        for (n, kind) in [(1, OperationType::Create), (2, OperationType::Create)] {
            let cmd = command(&format!("op-{n}"), kind, &format!("i-{n}"));
            state.log(&cmd, Some(&cmd.operation_id), 5);
            state.command(&cmd, Some(&cmd.operation_id), 5, settings);
        }
        state.complete("op-1");
        save(&path, &state).unwrap();
        assert!(!temporary(&path).exists());
        let back = load(&path).unwrap();
        assert_eq!(back, state);
        assert_eq!(back.unfinished(), vec![("op-2".to_owned(), 105)]);

        std::fs::write(&path, b"{not json").unwrap();
        assert!(load(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
