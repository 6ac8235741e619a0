//! Running the other programs of the build (cargo, wasm-opt, esbuild), with their output
//! prefixed so two builds running side by side stay readable, and a clear error when a tool
//! is missing.

use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct Running {
    what: String,
    child: Child,
    relays: Vec<JoinHandle<()>>,
}

/// Starts `cmd`, relaying each line it prints to stderr as `label | line`.
pub fn spawn(label: &'static str, what: &str, mut cmd: Command) -> Result<Running> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd.spawn().with_context(|| match program.as_str() {
        "wasm-opt" => "wasm-opt is not on PATH: scripts/lib.sh installs binaryen from npm".into(),
        "esbuild" => "esbuild is not on PATH: scripts/lib.sh installs it from npm".into(),
        _ => format!("could not start {program}"),
    })?;
    let mut relays = Vec::new();
    if let Some(out) = child.stdout.take() {
        relays.push(relay(label, out));
    }
    if let Some(err) = child.stderr.take() {
        relays.push(relay(label, err));
    }
    Ok(Running {
        what: what.to_string(),
        child,
        relays,
    })
}

fn relay(label: &'static str, stream: impl std::io::Read + Send + 'static) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            let line = line.trim_end();
            if !line.is_empty() {
                let _ = writeln!(std::io::stderr().lock(), "{label:>7} | {line}");
            }
        }
    })
}

impl Running {
    pub fn wait(mut self) -> Result<()> {
        let status = self.child.wait()?;
        for relay in self.relays.drain(..) {
            let _ = relay.join();
        }
        if !status.success() {
            bail!("{} failed ({status})", self.what);
        }
        Ok(())
    }
}

impl Drop for Running {
    /// A build abandoned halfway (the other side failed) must not leave cargo running.
    fn drop(&mut self) {
        if !self.relays.is_empty() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn run(label: &'static str, what: &str, cmd: Command) -> Result<()> {
    spawn(label, what, cmd)?.wait()
}

/// Prints one step of the build and how long it took.
pub fn step<T>(label: &str, what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    eprintln!("{label:>7} | {what}...");
    let start = Instant::now();
    let out = f().with_context(|| what.to_string())?;
    eprintln!("{label:>7} | {what}: done in {}", human(start.elapsed()));
    Ok(out)
}

pub fn human(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 {
        format!("{s:.1} s")
    } else {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    }
}
