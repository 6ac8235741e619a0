//! Brotli (quality 11) and gzip (level 9) copies beside every file of the site, written once at
//! build time; the server sends the one the browser accepts.

use anyhow::{Context, Result};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

pub fn precompress(root: &Path) -> Result<()> {
    let mut files = Vec::new();
    collect(root, &mut files)?;
    // The largest first, spread over the cores: the main wasm dominates.
    files.sort_by_key(|(_, len)| std::cmp::Reverse(*len));
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| -> Result<()> {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((path, _)) = files.get(i) else {
                            return Ok(());
                        };
                        compress_file(path)
                            .with_context(|| format!("compressing {}", path.display()))?;
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().expect("a compression thread panicked"))
    })
}

fn collect(dir: &Path, files: &mut Vec<(PathBuf, u64)>) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            collect(&path, files)?;
        } else if !matches!(path.extension().and_then(|e| e.to_str()), Some("br" | "gz")) {
            files.push((path, entry.metadata()?.len()));
        }
    }
    Ok(())
}

fn compress_file(path: &Path) -> Result<()> {
    let bytes = fs::read(path)?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&bytes)?;
    fs::write(with_suffix(path, "gz"), gz.finish()?)?;

    let mut br = Vec::new();
    let params = brotli::enc::BrotliEncoderParams {
        quality: 11,
        lgwin: 22,
        ..Default::default()
    };
    brotli::BrotliCompress(&mut bytes.as_slice(), &mut br, &params)?;
    fs::write(with_suffix(path, "br"), br)?;
    Ok(())
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    name.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn every_file_gets_copies_that_decompress_to_it() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("pkg")).unwrap();
        let wasm: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        fs::write(dir.path().join("pkg/app.wasm"), &wasm).unwrap();
        fs::write(dir.path().join("favicon.svg"), b"<svg/>").unwrap();

        precompress(dir.path()).unwrap();
        // A second run must not compress the copies again.
        precompress(dir.path()).unwrap();
        assert!(!dir.path().join("pkg/app.wasm.br.br").exists());

        for (file, original) in [
            ("pkg/app.wasm", wasm.as_slice()),
            ("favicon.svg", b"<svg/>"),
        ] {
            let br = fs::read(dir.path().join(format!("{file}.br"))).unwrap();
            let mut out = Vec::new();
            brotli::BrotliDecompress(&mut br.as_slice(), &mut out).unwrap();
            assert_eq!(out, original, "{file}.br");

            let gz = fs::read(dir.path().join(format!("{file}.gz"))).unwrap();
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(gz.as_slice())
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, original, "{file}.gz");
        }
        let br_len = fs::metadata(dir.path().join("pkg/app.wasm.br"))
            .unwrap()
            .len();
        assert!(
            br_len < wasm.len() as u64 / 10,
            "brotli 11 on a repetitive file: {br_len}"
        );
    }
}
