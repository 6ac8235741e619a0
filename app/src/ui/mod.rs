//! Pages and components.

mod components;
mod pages;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, MetaTags, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{path, Lazy, SsrMode};

/// Inside a provider's iframe, reports height and navigation to the embedding page; elsewhere
/// it does nothing. Inline: a file would cost a phone a request, and a revalidation on every
/// later visit.
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
                <HydrationScripts options/>
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
    // Effects run only in the browser, so this marks the moment hydration finished; browser
    // tests wait for it before they interact.
    Effect::new(|_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
    view! {
        <Title text="Portico"/>
        <Router>
            <Routes fallback=pages::NotFound>
                <Route path=path!("/") view=pages::Home/>
                <Route path=path!("/sign-in") view=pages::SignIn/>
                <Route path=path!("/instances") view=pages::InstanceList ssr=SsrMode::Async/>
                <Route path=path!("/instances/new") view={Lazy::<pages::CreatePage>::new()} ssr=SsrMode::Async/>
                <Route path=path!("/instances/:id") view=pages::InstancePage ssr=SsrMode::Async/>
                <Route path=path!("/audit") view={Lazy::<pages::AuditPage>::new()} ssr=SsrMode::Async/>
                <Route path=path!("/members") view={Lazy::<pages::MembersPage>::new()} ssr=SsrMode::Async/>
                <Route path=path!("/invite/:token") view={Lazy::<pages::InvitePage>::new()} ssr=SsrMode::Async/>
            </Routes>
        </Router>
    }
}
