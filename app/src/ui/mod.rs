//! Pages and components.

mod components;
mod pages;

pub use components::HYDRATED_ISLANDS;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, MetaTags, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{path, SsrMode};

/// The page's one inline script (`embed.js`); outside a frame it does nothing. Inline: a file
/// would cost a phone a request, and a revalidation on every later visit. Inside a provider's
/// iframe:
///
/// 1. It tells the embedding page the portal's content height (so it can size the frame) and its
///    current path (so it can mirror navigation), as `{ type: 'portico:resize', height }` and
///    `{ type: 'portico:navigate', path }`. Messages go to the embedding page's origin only, never
///    `'*'`; that origin already passed the portal's Content-Security-Policy `frame-ancestors`,
///    which lists exactly the configured sites. The portal listens to no messages.
/// 2. It keeps the frame signed in where the browser keeps no cookie for the portal at all (see
///    `crate::api::client`). `/embed` hands the page a token in the address's fragment
///    (`#portico-session=…`, never sent to a server), which leaves the address at once. When the
///    server rendered the page signed out (`#frame-sign-in`), every request to the portal carries
///    the token in the `x-portico-session` header from then on (`fetch` is wrapped, so the
///    bundle's server-function calls carry it too), the page is loaded again with it and put in
///    place, and so is every page opened inside the frame: links, GET forms, back and forward.
///    The islands of a page put in place hydrate once the bundle has started
///    (`frontend/src/lib.rs` sets `__porticoReady`).
const EMBED_JS: &str = include_str!("embed.js");

/// The page's live updates (`live.js`), inline for the same reason. On a signed-in page it opens
/// the tab's one event stream (`GET /events`, server-sent events; the browser reconnects by
/// itself and sends the last event's id, so the server replays what was missed) and:
///
/// 1. says in `#live-state` whether the page is live, or reconnecting since when;
/// 2. announces each event as a `portico:event` window event (`{ kind, instance_id,
///    operation_id }`): the islands showing that instance reload it (`ui/components/operation`);
/// 3. fetches the page again and puts in place the regions marked `data-live` with the event's
///    kind (the list when instances come and go, the audit log's lines);
/// 4. on `snapshot` (away longer than the server keeps events) reloads the page.
///
/// Events carry ids, never data: what changed is read again through the usual checks.
const LIVE_JS: &str = include_str!("live.js");

/// An inline script as it is sent: without its comment lines, blank lines and indentation
/// (the files keep them for whoever reads the source). Neither script has a string or
/// template literal that spans lines, so nothing the code means is lost.
fn compact(script: &'static str) -> &'static str {
    use std::collections::HashMap;
    use std::sync::{LazyLock, Mutex};
    static DONE: LazyLock<Mutex<HashMap<usize, &'static str>>> = LazyLock::new(Mutex::default);
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    done.entry(script.as_ptr() as usize).or_insert_with(|| {
        let lines: Vec<&str> = script
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("//"))
            .collect();
        Box::leak(lines.join("\n").into_boxed_str())
    })
}

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    // Where the provider's brand stylesheet lives this build (its address names its content).
    #[cfg(feature = "ssr")]
    let brand = use_context::<crate::server::state::AppState>().map_or_else(
        || "/brand.css".to_owned(),
        |s| crate::server::assets::brand_css_href(&s),
    );
    #[cfg(not(feature = "ssr"))]
    let brand = "/brand.css".to_owned();
    // The frame's script only where the page may be in one: every byte of a first visit counts.
    #[cfg(feature = "ssr")]
    let framed = components::may_be_framed();
    #[cfg(not(feature = "ssr"))]
    let framed = true;
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <HashedStylesheet options=options.clone() id="portico"/>
                // After the stylesheet: the provider's brand colour overrides its default.
                <link rel="stylesheet" href=brand/>
                <HydrationScripts options islands=true/>
                {framed.then(|| view! {
                    <script nonce=leptos::nonce::use_nonce() inner_html=compact(EMBED_JS)></script>
                })}
                <script nonce=leptos::nonce::use_nonce() inner_html=compact(LIVE_JS)></script>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Title text="Portico"/>
        <Router>
            <Routes fallback=pages::NotFound>
                <Route path=path!("/") view=pages::Home/>
                <Route path=path!("/sign-in") view=pages::SignIn/>
                <Route path=path!("/instances") view=pages::InstanceList ssr=SsrMode::Async/>
                <Route path=path!("/instances/new") view=pages::CreatePage ssr=SsrMode::Async/>
                <Route path=path!("/instances/:id") view=pages::InstancePage ssr=SsrMode::Async/>
                <Route path=path!("/audit") view=pages::AuditPage ssr=SsrMode::Async/>
                <Route path=path!("/members") view=pages::MembersPage ssr=SsrMode::Async/>
                <Route path=path!("/tokens") view=pages::TokensPage ssr=SsrMode::Async/>
                <Route path=path!("/webhooks") view=pages::WebhooksPage ssr=SsrMode::Async/>
                <Route path=path!("/invite/:token") view=pages::InvitePage ssr=SsrMode::Async/>
            </Routes>
        </Router>
    }
}

#[cfg(test)]
mod tests {
    use crate::api::client::{FRAGMENT_KEY, HEADER};

    /// The script that keeps a cookieless frame signed in names the fragment and the header the
    /// server uses.
    #[test]
    fn inline_scripts_are_sent_without_comments_but_keep_their_code() {
        let sent = super::compact(super::LIVE_JS);
        assert!(!sent.contains("//"), "{sent}");
        assert!(!sent.lines().any(|l| l.starts_with(' ')));
        assert!(sent.contains("const KINDS = ['instance.created'"));
        assert!(sent.len() < super::LIVE_JS.len() * 3 / 4);
        // Made once per script.
        assert!(std::ptr::eq(sent, super::compact(super::LIVE_JS)));
        let embed = super::compact(super::EMBED_JS);
        assert!(embed.contains(&format!("const HEADER = '{HEADER}';")));
    }

    #[test]
    fn the_embed_script_uses_the_servers_names() {
        assert!(super::EMBED_JS.contains(&format!("const KEY = '{FRAGMENT_KEY}';")));
        assert!(super::EMBED_JS.contains(&format!("const HEADER = '{HEADER}';")));
    }
}
