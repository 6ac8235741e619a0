//! The browser entry point. Pages are rendered on the server; only their islands (the
//! interactive parts, `#[island]` in `app::ui`) hydrate.

use leptos::prelude::{document, set_timeout, window};
use leptos::wasm_bindgen::JsValue;
use leptos::web_sys::js_sys::Reflect;
use std::time::Duration;

// The islands' hydrate functions (exported to the loader) live in `app`; nothing here names
// them, so link the crate explicitly or the bundle would have no islands at all.
extern crate app;

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_islands();
    // Leptos's loader hydrates the page's islands right after this returns. From now on, a page
    // that the embedded session's script (ui/embed.js) swaps in must hydrate its own islands.
    let _ = Reflect::set(
        &window(),
        &JsValue::from_str("__porticoReady"),
        &JsValue::TRUE,
    );
    mark_when_hydrated();
}

/// Marks the page `data-hydrated` once every island on it has hydrated (each counts itself;
/// a lazy one only after its chunk has arrived). Browser tests wait for this.
fn mark_when_hydrated() {
    let islands = document()
        .query_selector_all("leptos-island")
        .map_or(0, |l| l.length());
    let hydrated = Reflect::get(&window(), &JsValue::from_str(app::ui::HYDRATED_ISLANDS))
        .ok()
        .and_then(|v| v.as_f64())
        .unwrap_or(0.0);
    if hydrated >= f64::from(islands) {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    } else {
        set_timeout(mark_when_hydrated, Duration::from_millis(20));
    }
}
