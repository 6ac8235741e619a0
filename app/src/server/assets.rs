//! How the site's files and answers travel: the bundle under `/pkg` precompressed at build
//! time and cached for good, everything else compressed on the fly.
//!
//! A release build (`portico-site build`, the workspace's build step, with `hash-files`) names
//! the wasm, its JavaScript and the stylesheet after their content and writes a `.br` and a
//! `.gz` beside each file. A changed file gets a new name, so a browser may keep the old one
//! for a year without asking again. Without hashed names (a development build) a cached copy
//! must be revalidated every time instead, or a rebuilt bundle would not reach the browser.

use super::state::AppState;
use axum::extract::{Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use std::hash::{Hash, Hasher};
use std::path::Path;
use tower::Layer;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::compression::{CompressionLayer, CompressionLevel};
use tower_http::services::ServeDir;
use tower_http::set_header::{SetResponseHeader, SetResponseHeaderLayer};

/// `Cache-Control` of a file whose name carries its content hash.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of a bundle file without a hash in its name: keep it, but ask first.
const REVALIDATE: &str = "no-cache";

/// Answers smaller than this are sent as they are: below it, compression saves less than
/// a packet and costs a round of work.
pub const COMPRESS_ABOVE_BYTES: u64 = 1024;

/// The route prefix of the bundle (`/pkg`) and the service that serves it: the precompressed
/// file the browser accepts (brotli before gzip), with `Vary: Accept-Encoding`.
pub fn bundle(state: &AppState) -> (String, SetResponseHeader<ServeDir, HeaderValue>) {
    let options = &state.leptos_options;
    let dir = Path::new(options.site_root.as_ref()).join(options.site_pkg_dir.as_ref());
    let files = ServeDir::new(dir).precompressed_br().precompressed_gzip();
    let caching = HeaderValue::from_static(if options.hash_files {
        IMMUTABLE
    } else {
        REVALIDATE
    });
    let service = SetResponseHeaderLayer::overriding(CACHE_CONTROL, caching).layer(files);
    (format!("/{}", options.site_pkg_dir), service)
}

/// Compresses pages, server-function answers and other dynamic answers (brotli or gzip, as
/// the browser accepts) above [`COMPRESS_ABOVE_BYTES`]. Answers already encoded (the
/// precompressed bundle) pass untouched, as do images and event streams. Quality 4: most of
/// brotli's gain on HTML at a small fraction of its best setting's time, which a page pays
/// on every request.
pub fn compression() -> CompressionLayer<impl Predicate> {
    let worth_it = SizeAbove::new(COMPRESS_ABOVE_BYTES)
        .and(NotForContentType::GRPC)
        .and(NotForContentType::IMAGES)
        .and(NotForContentType::SSE);
    CompressionLayer::new()
        .quality(CompressionLevel::Precise(4))
        .compress_when(worth_it)
}

/// The stylesheet of the provider's brand, at an address that changes with the brand.
pub fn brand_css_href(state: &AppState) -> String {
    format!("/brand.css?v={}", brand_version(state))
}

/// A hash of what `/brand.css` says, so a changed brand gets a new address.
fn brand_version(state: &AppState) -> String {
    let branding = &state.provider.provider.branding;
    // SipHash with fixed keys: the same for every replica running the same build.
    let mut h = std::hash::DefaultHasher::new();
    (&branding.primary_color, branding.ink()).hash(&mut h);
    format!("{:016x}", h.finish())
}

#[derive(Debug, serde::Deserialize)]
pub struct BrandQuery {
    v: Option<String>,
}

/// The provider's brand colour as CSS variables, after the stylesheet's defaults: buttons,
/// links and focus rings take it. Text on it is black or white, whichever reads better.
/// Requested at its versioned address it is cached for good; at any other, for five minutes.
pub async fn brand_css(State(state): State<AppState>, query: Query<BrandQuery>) -> Response {
    let branding = &state.provider.provider.branding;
    let (colour, ink) = (&branding.primary_color, branding.ink());
    let current = query.v.as_deref() == Some(brand_version(&state).as_str());
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (
                CACHE_CONTROL,
                if current {
                    IMMUTABLE
                } else {
                    "public, max-age=300"
                },
            ),
        ],
        format!(":root {{ --brand: {colour}; --brand-ink: {ink}; }}\n"),
    )
        .into_response()
}
