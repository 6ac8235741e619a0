//! From the compiled wasm to the files a browser downloads: split out the lazy routes, generate
//! the JavaScript bindings, optimise every wasm module, minify the JavaScript and the stylesheet.

use crate::hash::{SPLIT_LOADER, SPLIT_MANIFEST};
use crate::run::{run, step};
use anyhow::{Context, Result};
use std::fs;
use std::path::Path;
use std::process::Command;

/// Writes the bundle into `pkg` (which must exist and be empty) from the wasm cargo built.
/// `scratch` holds intermediate files outside the site. Returns the stylesheet's name in `pkg`.
pub fn bundle(
    input_wasm: &Path,
    scratch: &Path,
    pkg: &Path,
    output_name: &str,
    style: Option<&Path>,
) -> Result<String> {
    let main_wasm = scratch.join(format!("{output_name}_split.wasm"));
    let split = step(
        "bundle",
        "splitting out the lazy routes (wasm-split)",
        || {
            let input = fs::read(input_wasm)
                .with_context(|| format!("reading {}", input_wasm.display()))?;
            let main_module = format!("./{output_name}.js");
            let link_name = format!("./{SPLIT_LOADER}");
            let mut options = wasm_split_cli_support::Options::new(&input);
            options.output_dir = pkg;
            options.main_out_path = &main_wasm;
            options.main_module = &main_module;
            options.link_name = &link_name;
            let split =
                wasm_split_cli_support::transform(options).map_err(|e| anyhow::anyhow!("{e:?}"))?;
            fs::write(
                pkg.join(SPLIT_MANIFEST),
                serde_json::to_string_pretty(&split.prefetch_map)?,
            )?;
            Ok(split.split_modules)
        },
    )?;

    step(
        "bundle",
        "generating the JavaScript bindings (wasm-bindgen)",
        || {
            wasm_bindgen_cli_support::Bindgen::new()
                .input_path(&main_wasm)
                .out_name(output_name)
                .web(true)?
                .keep_lld_exports(true)
                .demangle(false)
                .typescript(false)
                .generate(pkg)?;
            // leptos asks for `<name>.wasm` when it was built knowing the output name.
            fs::rename(
                pkg.join(format!("{output_name}_bg.wasm")),
                pkg.join(format!("{output_name}.wasm")),
            )?;
            Ok(())
        },
    )?;

    step(
        "bundle",
        "optimising the wasm for size (wasm-opt -Oz)",
        || {
            let mut modules = vec![pkg.join(format!("{output_name}.wasm"))];
            modules.extend(split);
            let running = modules
                .iter()
                .map(|module| {
                    let mut cmd = Command::new("wasm-opt");
                    cmd.args([
                        "-Oz",
                        "--enable-bulk-memory",
                        "--enable-nontrapping-float-to-int",
                    ])
                    .arg(module)
                    .arg("-o")
                    .arg(module);
                    crate::run::spawn("bundle", "wasm-opt", cmd)
                })
                .collect::<Result<Vec<_>>>()?;
            running.into_iter().try_for_each(|r| r.wait())
        },
    )?;

    step("bundle", "minifying the JavaScript (esbuild)", || {
        let mut cmd = Command::new("esbuild");
        cmd.arg("--minify")
            .arg("--log-level=warning")
            .arg("--allow-overwrite")
            // wasm-bindgen's glue lists the split loader once per import; the last one wins,
            // as it did before minifying.
            .arg("--log-override:duplicate-object-key=silent")
            .arg(format!("--outdir={}", pkg.display()));
        for entry in fs::read_dir(pkg)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "js") {
                cmd.arg(path);
            }
        }
        run("bundle", "esbuild", cmd)
    })?;

    let css_name = format!("{output_name}.css");
    step(
        "bundle",
        "minifying the stylesheet (esbuild)",
        || match style {
            Some(style) => {
                let mut cmd = Command::new("esbuild");
                cmd.arg(style)
                    .arg("--minify")
                    .arg("--log-level=warning")
                    .arg(format!("--outfile={}", pkg.join(&css_name).display()));
                run("bundle", "esbuild", cmd)
            }
            None => Ok(fs::write(pkg.join(&css_name), "")?),
        },
    )?;
    Ok(css_name)
}

/// Copies the assets folder into the site root, as cargo-leptos does: everything but an
/// `index.html` and a folder named like the bundle's.
pub fn copy_assets(from: &Path, to: &Path, pkg_dir: &Path) -> Result<()> {
    for entry in fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        if name == "index.html" || Path::new(&name) == pkg_dir {
            continue;
        }
        let dest = to.join(&name);
        if entry.file_type()?.is_dir() {
            fs::create_dir_all(&dest)?;
            copy_assets(&entry.path(), &dest, Path::new(""))?;
        } else {
            fs::copy(entry.path(), &dest)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_are_copied_with_their_folders_but_not_over_the_bundle() {
        let from = tempfile::tempdir().unwrap();
        let to = tempfile::tempdir().unwrap();
        fs::create_dir_all(from.path().join("img/icons")).unwrap();
        fs::write(from.path().join("img/icons/a.svg"), "a").unwrap();
        fs::write(from.path().join("robots.txt"), "r").unwrap();
        fs::write(from.path().join("index.html"), "i").unwrap();
        fs::create_dir(from.path().join("pkg")).unwrap();
        fs::write(from.path().join("pkg/x.js"), "x").unwrap();

        copy_assets(from.path(), to.path(), Path::new("pkg")).unwrap();
        assert_eq!(
            fs::read_to_string(to.path().join("img/icons/a.svg")).unwrap(),
            "a"
        );
        assert_eq!(
            fs::read_to_string(to.path().join("robots.txt")).unwrap(),
            "r"
        );
        assert!(!to.path().join("index.html").exists());
        assert!(!to.path().join("pkg").exists());
    }
}
