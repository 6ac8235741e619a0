//! The baseline the SSR benchmark (`end2end/bench.mjs`) measures Portico against: a minimal axum
//! server that answers each page with the bytes Portico rendered for it, held in memory. The
//! ratio of the two request rates is how much server rendering costs beyond serving HTTP at all.
//!
//! ```text
//! cargo build --release -p portico --example ssr_baseline
//! target/release/examples/ssr_baseline 3701 pages.json
//! ```
//!
//! `pages.json` lists the pages: `[{"path": "/sign-in", "content_type": "text/html; charset=utf-8",
//! "file": "/tmp/sign-in.html"}, ...]`, each with an optional `content_encoding` when the bytes
//! were captured compressed. The server binds 127.0.0.1 on the given port.

use anyhow::Context;
use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use std::net::Ipv4Addr;
use std::path::PathBuf;

#[derive(Deserialize)]
struct Page {
    path: String,
    content_type: String,
    #[serde(default)]
    content_encoding: Option<String>,
    file: PathBuf,
}

const USAGE: &str = "usage: ssr_baseline <port> <pages.json>";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args
        .next()
        .context(USAGE)?
        .parse()
        .context("the port is a number")?;
    let manifest = PathBuf::from(args.next().context(USAGE)?);
    let text = std::fs::read(&manifest).with_context(|| format!("reading {manifest:?}"))?;
    let pages: Vec<Page> = serde_json::from_slice(&text).context(USAGE)?;

    let mut router = Router::new();
    for page in pages {
        let body = Bytes::from(
            std::fs::read(&page.file).with_context(|| format!("reading {:?}", page.file))?,
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(&page.content_type)?,
        );
        if let Some(encoding) = &page.content_encoding {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_str(encoding)?);
        }
        router = router.route(
            &page.path,
            get(move || {
                let (headers, body) = (headers.clone(), body.clone());
                async move { (headers, body) }
            }),
        );
    }

    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .await
        .with_context(|| format!("binding 127.0.0.1:{port}"))?;
    println!("ssr_baseline listening on 127.0.0.1:{port}");
    axum::serve(listener, router).await?;
    Ok(())
}
