//! The build settings, read from the workspace's `[[workspace.metadata.leptos]]`: the same table
//! cargo-leptos reads, so `cargo leptos watch` and this build step agree on names and places.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Settings {
    pub bin_package: String,
    pub bin_target: String,
    #[serde(default)]
    pub bin_features: Vec<String>,
    #[serde(default = "yes")]
    pub bin_default_features: bool,
    pub lib_package: String,
    #[serde(default)]
    pub lib_features: Vec<String>,
    #[serde(default = "yes")]
    pub lib_default_features: bool,
    #[serde(default = "release")]
    pub lib_profile_release: String,
    pub output_name: String,
    pub site_root: PathBuf,
    #[serde(default = "pkg")]
    pub site_pkg_dir: PathBuf,
    pub style_file: Option<PathBuf>,
    pub assets_dir: Option<PathBuf>,
    #[serde(default)]
    pub hash_files: bool,
}

fn yes() -> bool {
    true
}
fn release() -> String {
    "release".into()
}
fn pkg() -> PathBuf {
    "pkg".into()
}

#[derive(Deserialize)]
struct Manifest {
    workspace: Workspace,
}
#[derive(Deserialize)]
struct Workspace {
    metadata: Metadata,
}
#[derive(Deserialize)]
struct Metadata {
    leptos: Vec<Settings>,
}

impl Settings {
    /// Reads the one project of the workspace manifest at `root/Cargo.toml`.
    pub fn load(root: &Path) -> Result<Settings> {
        let path = root.join("Cargo.toml");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    pub fn parse(manifest: &str) -> Result<Settings> {
        let manifest: Manifest =
            toml::from_str(manifest).context("no valid [[workspace.metadata.leptos]] table")?;
        let mut projects = manifest.workspace.metadata.leptos;
        if projects.len() != 1 {
            bail!(
                "expected one [[workspace.metadata.leptos]] project, found {}",
                projects.len()
            );
        }
        Ok(projects.remove(0))
    }

    /// The name of the wasm file cargo writes for the library package.
    pub fn lib_wasm_name(&self) -> String {
        format!("{}.wasm", self.lib_package.replace('-', "_"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_workspace_project_with_defaults() {
        let settings = Settings::parse(
            r#"
            [workspace]
            members = []
            [[workspace.metadata.leptos]]
            name = "portico"
            bin-package = "portico"
            bin-target = "portico"
            lib-package = "my-front"
            output-name = "portico"
            site-root = "target/site"
            "#,
        )
        .unwrap();
        assert_eq!(settings.lib_wasm_name(), "my_front.wasm");
        assert_eq!(settings.site_pkg_dir, PathBuf::from("pkg"));
        assert_eq!(settings.lib_profile_release, "release");
        assert!(settings.bin_default_features && !settings.hash_files);
        assert!(settings.style_file.is_none());
    }

    #[test]
    fn the_real_manifest_parses() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let settings = Settings::load(&root).unwrap();
        assert_eq!(settings.output_name, "portico");
        assert!(settings.hash_files, "the release bundle is content-hashed");
        assert_eq!(settings.lib_profile_release, "wasm-release");
    }

    #[test]
    fn two_projects_are_refused() {
        let text = r#"
            [[workspace.metadata.leptos]]
            bin-package = "a"
            bin-target = "a"
            lib-package = "b"
            output-name = "a"
            site-root = "s"
            [[workspace.metadata.leptos]]
            bin-package = "a"
            bin-target = "a"
            lib-package = "b"
            output-name = "a"
            site-root = "s"
        "#;
        let err = Settings::parse(text).unwrap_err();
        assert!(format!("{err:#}").contains("found 2"), "{err:#}");
    }
}
