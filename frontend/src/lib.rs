//! The browser entry point: hydrate the server-rendered page and nothing else.

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // hydrate_lazy, not hydrate_body: a page that is a lazy route must load its chunk before it
    // can hydrate (hydrate_body panics on one).
    leptos::mount::hydrate_lazy(app::ui::App);
}
