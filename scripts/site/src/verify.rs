//! The built site against its promises: every file `hash.txt` and the split manifest name is
//! there, every bundle file carries its hash, and every file has its compressed copies. A build
//! that would leave the server pointing browsers at a missing file fails here instead.

use crate::hash::{self, Hashes, SPLIT_MANIFEST};
use anyhow::{bail, ensure, Context, Result};
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

pub fn site(site: &Path, pkg: &Path, output_name: &str, hash_txt: &str) -> Result<()> {
    let mut problems = Vec::new();
    let manifest_name = if hash_txt.is_empty() {
        for name in [format!("{output_name}.js"), format!("{output_name}.wasm")] {
            if !pkg.join(&name).is_file() {
                problems.push(format!("{name} is missing"));
            }
        }
        SPLIT_MANIFEST.to_string()
    } else {
        let hashes = parse_hash_txt(hash_txt)?;
        for file in hash::promised_files(output_name, &hashes) {
            if !pkg.join(&file).is_file() {
                problems.push(format!("{} (named in hash.txt) is missing", file.display()));
            }
        }
        let css = format!("{output_name}.{}.css", hashes.css);
        if let Ok(bytes) = fs::read(pkg.join(&css)) {
            if hash::digest(&[&bytes]) != hashes.css {
                problems.push(format!("{css} does not match its hash"));
            }
        }
        for entry in fs::read_dir(pkg)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            let base = name.trim_end_matches(".br").trim_end_matches(".gz");
            if !base.contains(&hashes.bundle) && !base.contains(&hashes.css) {
                problems.push(format!("{name} has no content hash in its name"));
            }
        }
        hash::hashed_name(SPLIT_MANIFEST, &hashes.bundle)
    };
    if let Ok(text) = fs::read_to_string(pkg.join(&manifest_name)) {
        let manifest: BTreeMap<String, Vec<String>> =
            serde_json::from_str(&text).with_context(|| format!("parsing {manifest_name}"))?;
        for chunk in manifest.values().flatten() {
            if !pkg.join(format!("{chunk}.wasm")).is_file() {
                problems.push(format!(
                    "{chunk}.wasm (named in the split manifest) is missing"
                ));
            }
        }
    }
    compressed_copies(site, &mut problems)?;
    if !problems.is_empty() {
        bail!(
            "the site at {} is incomplete:\n  {}",
            site.display(),
            problems.join("\n  ")
        );
    }
    Ok(())
}

fn compressed_copies(dir: &Path, problems: &mut Vec<String>) -> Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            compressed_copies(&path, problems)?;
            continue;
        }
        let name = path.to_string_lossy();
        if name.ends_with(".br") || name.ends_with(".gz") {
            continue;
        }
        for suffix in ["br", "gz"] {
            if !Path::new(&format!("{name}.{suffix}")).is_file() {
                problems.push(format!("{name} has no .{suffix} copy"));
            }
        }
    }
    Ok(())
}

pub fn parse_hash_txt(text: &str) -> Result<Hashes> {
    let mut lines = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (key, value) = line
            .split_once(':')
            .with_context(|| format!("hash.txt: {line:?} is not `name: hash`"))?;
        lines.insert(key.trim(), value.trim());
    }
    let get = |key: &str| {
        lines
            .get(key)
            .map(|v| v.to_string())
            .with_context(|| format!("hash.txt has no {key} line"))
    };
    let bundle = get("js")?;
    ensure!(
        get("wasm")? == bundle,
        "hash.txt: js and wasm hashes differ"
    );
    Ok(Hashes {
        split: lines.contains_key("split"),
        css: get("css")?,
        bundle,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built_site() -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let pkg = dir.path().join("pkg");
        fs::create_dir(&pkg).unwrap();
        fs::write(
            pkg.join("app.js"),
            "import './__wasm_split.______________________.js'",
        )
        .unwrap();
        fs::write(pkg.join("app.wasm"), "\0asm").unwrap();
        fs::write(pkg.join("split_1.wasm"), "\0asm").unwrap();
        fs::write(pkg.join(hash::SPLIT_LOADER), "load('./split_1.wasm')").unwrap();
        fs::write(pkg.join(SPLIT_MANIFEST), r#"{"x": ["split_1"]}"#).unwrap();
        fs::write(pkg.join("app.css"), "a{}").unwrap();
        fs::write(dir.path().join("favicon.svg"), "<svg/>").unwrap();
        let hashes = hash::hash_pkg(&pkg, "app.css").unwrap();
        crate::compress::precompress(dir.path()).unwrap();
        (dir, hashes.hash_txt())
    }

    #[test]
    fn a_complete_site_passes() {
        let (dir, hash_txt) = built_site();
        site(dir.path(), &dir.path().join("pkg"), "app", &hash_txt).unwrap();
    }

    #[test]
    fn a_missing_chunk_or_copy_is_named() {
        let (dir, hash_txt) = built_site();
        let hashes = parse_hash_txt(&hash_txt).unwrap();
        fs::remove_file(
            dir.path()
                .join(format!("pkg/split_1.{}.wasm", hashes.bundle)),
        )
        .unwrap();
        fs::remove_file(dir.path().join("favicon.svg.gz")).unwrap();
        fs::write(dir.path().join("pkg/stray.js"), "").unwrap();
        let err = format!(
            "{:#}",
            site(dir.path(), &dir.path().join("pkg"), "app", &hash_txt).unwrap_err()
        );
        assert!(err.contains("split manifest) is missing"), "{err}");
        assert!(err.contains("favicon.svg has no .gz copy"), "{err}");
        assert!(err.contains("stray.js has no content hash"), "{err}");
    }

    #[test]
    fn a_stale_hash_txt_is_caught() {
        let (dir, hash_txt) = built_site();
        let stale = hash_txt.replacen("css: ", "css: X", 1);
        let err = format!(
            "{:#}",
            site(dir.path(), &dir.path().join("pkg"), "app", &stale).unwrap_err()
        );
        assert!(err.contains("named in hash.txt) is missing"), "{err}");
    }
}
