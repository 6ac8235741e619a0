//! `portico-site`: builds what `portico serve` serves, without cargo-leptos.
//!
//! The server and the wasm front end compile side by side (two cargo processes, two target
//! folders, as cargo-leptos lays them out), then the front end becomes the site: lazy routes
//! split out, bindings generated (the wasm-bindgen library, at the exact version the bundle
//! links, so no separate CLI install), wasm-opt, esbuild for the JavaScript and the stylesheet,
//! the assets copied, every file named after its content and precompressed. `hash.txt` beside
//! the server binary names the bundle's files. Nothing is redone when the compiled wasm, the
//! stylesheet and the assets are what the last build used.
//!
//! Settings come from `[[workspace.metadata.leptos]]` in the workspace's Cargo.toml, so
//! `cargo leptos watch` keeps working for those who have it.

mod compress;
mod config;
mod front;
mod hash;
mod run;
mod verify;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use config::Settings;
use run::{human, step};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Bumped when the build step changes what it writes, so a warm cache is not trusted.
const STAMP_VERSION: &str = "portico-site 1";

#[derive(Parser)]
#[command(about = "Builds Portico's server and site (release)")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the server binary and the site (release profiles).
    Build {
        /// Only the site (the wasm bundle, style and assets) and hash.txt.
        #[arg(long, conflicts_with = "server_only")]
        front_only: bool,
        /// Only the server binary.
        #[arg(long)]
        server_only: bool,
        /// An extra argument for the wasm build's cargo (repeatable), e.g. -Zbuild-std=std.
        #[arg(long = "wasm-cargo-arg", allow_hyphen_values = true)]
        wasm_cargo_args: Vec<String>,
    },
    /// Check that the built site holds every file hash.txt and the split manifest name,
    /// with content-hashed names and compressed copies.
    Verify,
}

struct Paths {
    root: PathBuf,
    target: PathBuf,
    front_target: PathBuf,
    site: PathBuf,
    pkg: PathBuf,
    hash_txt: PathBuf,
}

impl Paths {
    fn new(settings: &Settings, root: PathBuf) -> Paths {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"));
        let target = if target.is_absolute() {
            target
        } else {
            root.join(target)
        };
        let site = root.join(&settings.site_root);
        Paths {
            front_target: target.join("front"),
            hash_txt: target.join("release").join("hash.txt"),
            pkg: site.join(&settings.site_pkg_dir),
            site,
            target,
            root,
        }
    }
}

fn main() {
    if let Err(err) = try_main() {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

fn try_main() -> Result<()> {
    let cli = Cli::parse();
    let root = std::env::current_dir()?;
    let settings = Settings::load(&root).context("run portico-site from the workspace root")?;
    let paths = Paths::new(&settings, root);
    match cli.command {
        Cmd::Verify => {
            let hash_txt = fs::read_to_string(&paths.hash_txt)
                .with_context(|| format!("reading {}", paths.hash_txt.display()))?;
            verify::site(&paths.site, &paths.pkg, &settings.output_name, &hash_txt)?;
            eprintln!("the site at {} is complete", paths.site.display());
            Ok(())
        }
        Cmd::Build {
            front_only,
            server_only,
            wasm_cargo_args,
        } => build(
            &settings,
            &paths,
            !server_only,
            !front_only,
            &wasm_cargo_args,
        ),
    }
}

fn build(
    settings: &Settings,
    paths: &Paths,
    front: bool,
    server: bool,
    wasm_cargo_args: &[String],
) -> Result<()> {
    let start = Instant::now();
    let server_build = server
        .then(|| {
            eprintln!(" server | compiling the server (cargo build --release), beside the bundle");
            run::spawn(
                "server",
                "the server's cargo build",
                server_cargo(settings, paths),
            )
        })
        .transpose()?;
    if front {
        step(
            "bundle",
            "compiling the front end for wasm32 (cargo)",
            || {
                run::run(
                    "bundle",
                    "the wasm cargo build",
                    front_cargo(settings, paths, wasm_cargo_args),
                )
            },
        )?;
        site(settings, paths)?;
    }
    if let Some(server_build) = server_build {
        let waited = Instant::now();
        server_build.wait()?;
        eprintln!(
            " server | compiled (waited {} after the bundle)",
            human(waited.elapsed())
        );
    }
    eprintln!("   site | built in {}", human(start.elapsed()));
    Ok(())
}

fn server_cargo(settings: &Settings, paths: &Paths) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(&paths.root)
        .env("CARGO_TARGET_DIR", &paths.target)
        .env("LEPTOS_OUTPUT_NAME", &settings.output_name)
        .args(["build", "--release", "--package", &settings.bin_package])
        .args(["--bin", &settings.bin_target]);
    features(
        &mut cmd,
        settings.bin_default_features,
        &settings.bin_features,
    );
    cmd
}

fn front_cargo(settings: &Settings, paths: &Paths, extra: &[String]) -> Command {
    // wasm-split finds the functions to move by the relocations the linker keeps with
    // --emit-relocs; the flag joins whatever the caller set for the wasm target.
    const RUSTFLAGS: &str = "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS";
    let mut rustflags = std::env::var(RUSTFLAGS).unwrap_or_default();
    rustflags.push_str(" -Clink-args=--emit-relocs");
    let mut cmd = Command::new("cargo");
    cmd.current_dir(&paths.root)
        .env("LEPTOS_OUTPUT_NAME", &settings.output_name)
        .env(RUSTFLAGS, rustflags.trim())
        .args(["build", "--package", &settings.lib_package, "--lib"])
        .args(["--target", "wasm32-unknown-unknown", "--target-dir"])
        .arg(&paths.front_target)
        .args(["--profile", &settings.lib_profile_release]);
    features(
        &mut cmd,
        settings.lib_default_features,
        &settings.lib_features,
    );
    cmd.args(extra);
    cmd
}

fn features(cmd: &mut Command, default: bool, features: &[String]) {
    if !default {
        cmd.arg("--no-default-features");
    }
    if !features.is_empty() {
        cmd.arg("--features").arg(features.join(","));
    }
}

/// Turns the compiled wasm into the site, unless the last build did so from the same inputs.
fn site(settings: &Settings, paths: &Paths) -> Result<()> {
    let wasm = paths
        .front_target
        .join("wasm32-unknown-unknown")
        .join(&settings.lib_profile_release)
        .join(settings.lib_wasm_name());
    let stamp_file = paths.front_target.join("portico-site.stamp");
    let stamp = inputs_digest(settings, paths, &wasm)?;
    if let Ok(last) = fs::read_to_string(&stamp_file) {
        if let Some((last_stamp, hash_txt)) = last.split_once('\n') {
            if last_stamp == stamp
                && fs::read_to_string(&paths.hash_txt).is_ok_and(|h| h == hash_txt)
                && verify::site(&paths.site, &paths.pkg, &settings.output_name, hash_txt).is_ok()
            {
                eprintln!("   site | unchanged since the last build: nothing to do");
                return Ok(());
            }
        }
    }

    if paths.root.starts_with(&paths.site) {
        bail!(
            "site-root {} would hold the workspace; the build empties it, so it must be a folder \
             of its own (target/site)",
            paths.site.display()
        );
    }
    if paths.site.exists() {
        fs::remove_dir_all(&paths.site)
            .with_context(|| format!("emptying {}", paths.site.display()))?;
    }
    fs::create_dir_all(&paths.pkg)?;
    let scratch = paths.front_target.join("portico-site");
    fs::create_dir_all(&scratch)?;
    let style = settings.style_file.as_ref().map(|s| paths.root.join(s));
    let css = front::bundle(
        &wasm,
        &scratch,
        &paths.pkg,
        &settings.output_name,
        style.as_deref(),
    )?;
    if let Some(assets) = &settings.assets_dir {
        step("site", "copying the assets", || {
            front::copy_assets(
                &paths.root.join(assets),
                &paths.site,
                &settings.site_pkg_dir,
            )
        })?;
    }
    let hash_txt = if settings.hash_files {
        let hashes = step("site", "naming every file after its content", || {
            hash::hash_pkg(&paths.pkg, &css)
        })?;
        let text = hashes.hash_txt();
        fs::create_dir_all(paths.hash_txt.parent().expect("release folder"))?;
        fs::write(&paths.hash_txt, &text)
            .with_context(|| format!("writing {}", paths.hash_txt.display()))?;
        text
    } else {
        String::new()
    };
    step("site", "precompressing (brotli 11, gzip 9)", || {
        compress::precompress(&paths.site)
    })?;
    verify::site(&paths.site, &paths.pkg, &settings.output_name, &hash_txt)?;
    fs::write(&stamp_file, format!("{stamp}\n{hash_txt}"))?;
    Ok(())
}

/// What the site is made from: the compiled wasm, the stylesheet, the assets, the settings.
fn inputs_digest(settings: &Settings, paths: &Paths, wasm: &Path) -> Result<String> {
    let mut parts: Vec<Vec<u8>> = vec![
        STAMP_VERSION.into(),
        format!("{settings:?}").into(),
        fs::read(wasm).with_context(|| format!("reading {}", wasm.display()))?,
    ];
    if let Some(style) = &settings.style_file {
        parts.push(fs::read(paths.root.join(style))?);
    }
    if let Some(assets) = &settings.assets_dir {
        let mut files = Vec::new();
        list_files(&paths.root.join(assets), &mut files)?;
        files.sort();
        for file in files {
            parts.push(file.to_string_lossy().as_bytes().to_vec());
            parts.push(fs::read(&file)?);
        }
    }
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    Ok(hash::digest(&refs))
}

fn list_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            list_files(&entry.path(), files)?;
        } else {
            files.push(entry.path());
        }
    }
    Ok(())
}
