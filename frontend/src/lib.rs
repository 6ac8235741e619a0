//! The browser entry point: hydrate the server-rendered page and nothing else.

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // Before anything reads the address: an embedded session's token leaves it at once.
    app::api::client::take_from_location();
    // hydrate_lazy, not hydrate_body: a page that is a lazy route must load its chunk before it
    // can hydrate (hydrate_body panics on one).
    leptos::mount::hydrate_lazy(app::ui::App);
}
