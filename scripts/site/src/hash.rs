//! Content-hashed names for the bundle, so the server can let browsers keep every file for a
//! year: a file's name changes whenever what it means changes.
//!
//! The stylesheet is a leaf (only the page links it) and is named after its own content. The
//! JavaScript, the wasm modules and the split manifest refer to one another in a cycle (the
//! main wasm imports the split loader by name, the loader fetches the chunks by name, the chunks
//! import the loader), so they share one hash: the digest of all of them together. A change to
//! any of them renames all of them, and no cached file can ever point at a name that is gone.
//!
//! `hash.txt` (beside the server binary) tells leptos which names to put in the page, in the
//! format leptos reads: `js:`, `wasm:`, `css:`, `manifest:` and `split:` lines.

use anyhow::{bail, Context, Result};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use md5::{Digest, Md5};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Twenty-two characters: the length of an MD5 digest in unpadded base64url. The split loader
/// is first written under this name so its hashed name has the same length: the wasm chunks
/// import it by name, and a name inside a wasm binary cannot change length.
pub const PLACEHOLDER: &str = "______________________";
pub const SPLIT_LOADER: &str = "__wasm_split.______________________.js";
pub const SPLIT_MANIFEST: &str = "__wasm_split_manifest.json";

pub fn digest(parts: &[&[u8]]) -> String {
    let mut md5 = Md5::new();
    for part in parts {
        md5.update((part.len() as u64).to_le_bytes());
        md5.update(part);
    }
    URL_SAFE_NO_PAD.encode(md5.finalize())
}

/// What the renaming decided, as `hash.txt` states it.
#[derive(Debug, PartialEq)]
pub struct Hashes {
    pub bundle: String,
    pub css: String,
    pub split: bool,
}

impl Hashes {
    pub fn hash_txt(&self) -> String {
        let mut text = format!(
            "js: {b}\nwasm: {b}\ncss: {c}\n",
            b = self.bundle,
            c = self.css
        );
        if self.split {
            text.push_str(&format!("manifest: {b}\nsplit: {b}\n", b = self.bundle));
        }
        text
    }
}

/// Renames every file of `pkg` (flat: the bundle has no subfolders) after its content and
/// rewrites the references between them. `css` is the stylesheet's file name in `pkg`.
pub fn hash_pkg(pkg: &Path, css: &str) -> Result<Hashes> {
    let mut files = BTreeMap::new();
    for entry in fs::read_dir(pkg).with_context(|| format!("reading {}", pkg.display()))? {
        let entry = entry?;
        let name = entry
            .file_name()
            .into_string()
            .map_err(|n| anyhow::anyhow!("a file name that is not UTF-8 in the bundle: {n:?}"))?;
        if !entry.file_type()?.is_file() {
            // wasm-bindgen writes `snippets/` for inline JavaScript; their names could not be
            // hashed without rewriting the glue's imports, so the build refuses them.
            bail!(
                "{name}/ in the bundle: inline JavaScript snippets (#[wasm_bindgen(inline_js)] or \
                 module = \"...\") are not supported; put the script in the page instead"
            );
        }
        files.insert(name, fs::read(entry.path())?);
    }
    let Some(css_bytes) = files.remove(css) else {
        bail!("the stylesheet {css} is not in {}", pkg.display());
    };
    let css_hash = digest(&[&css_bytes]);
    let parts: Vec<&[u8]> = files
        .iter()
        .flat_map(|(name, bytes)| [name.as_bytes(), bytes.as_slice()])
        .collect();
    let bundle = digest(&parts);

    let mut renames: Vec<(String, String)> = files
        .keys()
        .map(|name| (name.clone(), hashed_name(name, &bundle)))
        .collect();
    // Longest first, so no name is rewritten inside a longer one that contains it.
    renames.sort_by_key(|(old, _)| std::cmp::Reverse(old.len()));

    let split = files.contains_key(SPLIT_LOADER);
    for (name, bytes) in &files {
        let new_bytes = if name.ends_with(".wasm") {
            replace_bytes(
                bytes,
                SPLIT_LOADER.as_bytes(),
                hashed_name(SPLIT_LOADER, &bundle).as_bytes(),
            )
        } else if name == SPLIT_MANIFEST {
            rewrite_manifest(bytes, &renames)?
        } else {
            let text =
                std::str::from_utf8(bytes).with_context(|| format!("{name} is not UTF-8 text"))?;
            replace_names(text, &renames).into_bytes()
        };
        fs::write(pkg.join(hashed_name(name, &bundle)), new_bytes)?;
        fs::remove_file(pkg.join(name))?;
    }
    fs::rename(pkg.join(css), pkg.join(hashed_name(css, &css_hash)))?;
    Ok(Hashes {
        bundle,
        css: css_hash,
        split,
    })
}

/// `portico.js` -> `portico.<hash>.js`; a name holding the placeholder gets the hash there.
pub fn hashed_name(name: &str, hash: &str) -> String {
    if name.contains(PLACEHOLDER) {
        return name.replace(PLACEHOLDER, hash);
    }
    match name.rsplit_once('.') {
        Some((stem, ext)) => format!("{stem}.{hash}.{ext}"),
        None => format!("{name}.{hash}"),
    }
}

/// Replaces whole file names only: an occurrence counts when the characters around it cannot
/// be part of a file name, so `split_1.wasm` is not rewritten inside `split_11.wasm`.
pub fn replace_names(text: &str, renames: &[(String, String)]) -> String {
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    let mut out = String::with_capacity(text.len() + 64);
    let mut rest = text;
    'scan: while !rest.is_empty() {
        let before = out.chars().next_back();
        if before.is_none_or(|c| !is_name_char(c)) {
            for (old, new) in renames {
                if let Some(after) = rest.strip_prefix(old.as_str()) {
                    if after.chars().next().is_none_or(|c| !is_name_char(c)) {
                        out.push_str(new);
                        rest = after;
                        continue 'scan;
                    }
                }
            }
        }
        let c = rest.chars().next().expect("not empty");
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn replace_bytes(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

/// The manifest names chunks without their `.wasm`; it is parsed, not searched, so only whole
/// names change.
fn rewrite_manifest(bytes: &[u8], renames: &[(String, String)]) -> Result<Vec<u8>> {
    let manifest: BTreeMap<String, Vec<String>> =
        serde_json::from_slice(bytes).context("the split manifest is not a map of lists")?;
    let chunk = |name: &String| -> String {
        let file = format!("{name}.wasm");
        renames
            .iter()
            .find(|(old, _)| *old == file)
            .map(|(_, new)| new.trim_end_matches(".wasm").to_string())
            .unwrap_or_else(|| name.clone())
    };
    let manifest: BTreeMap<&String, Vec<String>> = manifest
        .iter()
        .map(|(key, chunks)| (key, chunks.iter().map(chunk).collect()))
        .collect();
    Ok(serde_json::to_vec_pretty(&manifest)?)
}

/// The file names `hash.txt` promises, each as it must exist in `pkg`.
pub fn promised_files(output_name: &str, hashes: &Hashes) -> Vec<PathBuf> {
    let mut files = vec![
        PathBuf::from(format!("{output_name}.{}.js", hashes.bundle)),
        PathBuf::from(format!("{output_name}.{}.wasm", hashes.bundle)),
        PathBuf::from(format!("{output_name}.{}.css", hashes.css)),
    ];
    if hashes.split {
        files.push(hashed_name(SPLIT_LOADER, &hashes.bundle).into());
        files.push(hashed_name(SPLIT_MANIFEST, &hashes.bundle).into());
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, bytes: &[u8]) {
        fs::write(dir.join(name), bytes).unwrap();
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    /// A bundle shaped like wasm-bindgen's and wasm-split's output.
    fn fake_bundle(dir: &Path, chunk: &[u8]) {
        write(
            dir,
            "app.js",
            b"import * as s from './__wasm_split.______________________.js';\nfetch('app.wasm');\n",
        );
        write(
            dir,
            "app.wasm",
            b"\0asm..__wasm_split.______________________.js..",
        );
        write(dir, "split_1.wasm", chunk);
        write(
            dir,
            "split_11.wasm",
            b"\0asm eleven __wasm_split.______________________.js",
        );
        write(dir, SPLIT_LOADER, b"import {initSync} from './app.js';\nload('./split_1.wasm'); load('./split_11.wasm');\n");
        write(
            dir,
            SPLIT_MANIFEST,
            br#"{"create": ["split_1", "split_11"]}"#,
        );
        write(dir, "app.css", b"body{color:red}");
    }

    #[test]
    fn every_file_is_renamed_and_every_reference_follows() {
        let dir = tempfile::tempdir().unwrap();
        fake_bundle(
            dir.path(),
            b"\0asm one __wasm_split.______________________.js",
        );
        let hashes = hash_pkg(dir.path(), "app.css").unwrap();
        let b = &hashes.bundle;
        assert_eq!(b.len(), PLACEHOLDER.len());
        assert!(hashes.split);

        let mut expected = vec![
            format!("app.{b}.js"),
            format!("app.{b}.wasm"),
            format!("split_1.{b}.wasm"),
            format!("split_11.{b}.wasm"),
            format!("__wasm_split.{b}.js"),
            format!("__wasm_split_manifest.{b}.json"),
            format!("app.{}.css", hashes.css),
        ];
        expected.sort();
        assert_eq!(listing(dir.path()), expected);
        for file in promised_files("app", &hashes) {
            assert!(
                dir.path().join(&file).exists(),
                "{} promised",
                file.display()
            );
        }

        let read = |name: String| fs::read_to_string(dir.path().join(name)).unwrap();
        let loader = format!("__wasm_split.{b}.js");
        assert!(read(format!("app.{b}.js")).contains(&format!("'./{loader}'")));
        assert!(read(format!("app.{b}.js")).contains(&format!("'app.{b}.wasm'")));
        let loader_text = read(loader.clone());
        assert!(
            loader_text.contains(&format!("'./app.{b}.js'")),
            "{loader_text}"
        );
        assert!(
            loader_text.contains(&format!("'./split_1.{b}.wasm'")),
            "{loader_text}"
        );
        assert!(
            loader_text.contains(&format!("'./split_11.{b}.wasm'")),
            "{loader_text}"
        );
        let chunk = fs::read(dir.path().join(format!("split_1.{b}.wasm"))).unwrap();
        assert!(
            chunk.ends_with(loader.as_bytes()),
            "the chunk imports the renamed loader"
        );
        let manifest: BTreeMap<String, Vec<String>> =
            serde_json::from_str(&read(format!("__wasm_split_manifest.{b}.json"))).unwrap();
        assert_eq!(
            manifest["create"],
            [format!("split_1.{b}"), format!("split_11.{b}")]
        );
        assert_eq!(read(format!("app.{}.css", hashes.css)), "body{color:red}");
    }

    #[test]
    fn a_change_to_one_chunk_renames_the_whole_bundle_but_not_the_stylesheet() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        fake_bundle(a.path(), b"\0asm one");
        fake_bundle(b.path(), b"\0asm one, changed");
        let (ha, hb) = (
            hash_pkg(a.path(), "app.css").unwrap(),
            hash_pkg(b.path(), "app.css").unwrap(),
        );
        assert_ne!(ha.bundle, hb.bundle);
        assert_eq!(ha.css, hb.css);

        let c = tempfile::tempdir().unwrap();
        fake_bundle(c.path(), b"\0asm one");
        assert_eq!(
            hash_pkg(c.path(), "app.css").unwrap(),
            ha,
            "same input, same names"
        );
    }

    #[test]
    fn hash_txt_is_what_leptos_reads() {
        let hashes = Hashes {
            bundle: "B".into(),
            css: "C".into(),
            split: true,
        };
        assert_eq!(
            hashes.hash_txt(),
            "js: B\nwasm: B\ncss: C\nmanifest: B\nsplit: B\n"
        );
        let unsplit = Hashes {
            split: false,
            ..hashes
        };
        assert_eq!(unsplit.hash_txt(), "js: B\nwasm: B\ncss: C\n");
    }

    #[test]
    fn names_are_replaced_whole() {
        let renames = vec![
            ("split_11.wasm".to_string(), "split_11.H.wasm".to_string()),
            ("split_1.wasm".to_string(), "split_1.H.wasm".to_string()),
        ];
        assert_eq!(
            replace_names(
                "a('./split_1.wasm') b(\"split_11.wasm\") my_split_1.wasm split_1.wasmx",
                &renames
            ),
            "a('./split_1.H.wasm') b(\"split_11.H.wasm\") my_split_1.wasm split_1.wasmx"
        );
    }

    #[test]
    fn a_snippets_folder_is_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        fake_bundle(dir.path(), b"x");
        fs::create_dir(dir.path().join("snippets")).unwrap();
        let err = hash_pkg(dir.path(), "app.css").unwrap_err();
        assert!(format!("{err:#}").contains("snippets"), "{err:#}");
    }
}
