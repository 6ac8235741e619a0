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
                <script nonce=leptos::nonce::use_nonce() inner_html=EMBED_JS></script>
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
    fn the_embed_script_uses_the_servers_names() {
        assert!(super::EMBED_JS.contains(&format!("const KEY = '{FRAGMENT_KEY}';")));
        assert!(super::EMBED_JS.contains(&format!("const HEADER = '{HEADER}';")));
    }
}
