//! The links between the pages of a long list: plain links that keep the list's filters, so
//! they work before (or without) the wasm bundle.

use crate::domain::page_href;
use leptos::prelude::*;

/// "Previous" and "next" links of one page, when it has neighbours. `filters` are the list's
/// query values; the links add `before=` or `after=` to them.
#[component]
pub fn Pager(
    /// What the navigation is called, e.g. "Pages of instances".
    label: &'static str,
    path: &'static str,
    filters: Vec<(&'static str, String)>,
    previous: Option<String>,
    next: Option<String>,
    previous_text: &'static str,
    next_text: &'static str,
) -> impl IntoView {
    (previous.is_some() || next.is_some()).then(|| {
        let link = |key: &str, cursor: Option<String>, rel: &'static str, text: &'static str| {
            cursor.map(|c| {
                view! { <a href=page_href(path, &filters, key, &c) rel=rel>{text}</a> }
            })
        };
        view! {
            <nav class="pager" aria-label=label>
                {link("before", previous, "prev", previous_text)}
                {link("after", next, "next", next_text)}
            </nav>
        }
    })
}
