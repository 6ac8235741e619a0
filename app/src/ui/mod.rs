//! Pages and components.

mod components;
mod pages;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{path, Lazy, SsrMode};

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <HydrationScripts options/>
                // Inside a provider's iframe, reports height and navigation to the embedding
                // page; elsewhere it does nothing (public/embed.js).
                <script src="/embed.js" defer></script>
                <MetaTags/>
                // After the stylesheet: the provider's brand colour overrides its default.
                <link rel="stylesheet" href="/brand.css"/>
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
        <Stylesheet id="portico" href="/pkg/portico.css"/>
        <Title text="Portico"/>
        <Router>
            <Routes fallback=pages::NotFound>
                <Route path=path!("/") view=pages::Home/>
                <Route path=path!("/sign-in") view=pages::SignIn/>
                <Route path=path!("/instances") view=pages::InstanceList ssr=SsrMode::Async/>
                <Route path=path!("/instances/new") view=pages::CreatePage ssr=SsrMode::Async/>
                <Route path=path!("/instances/:id") view=pages::InstancePage ssr=SsrMode::Async/>
                <Route path=path!("/audit") view={Lazy::<pages::AuditPage>::new()} ssr=SsrMode::Async/>
                <Route path=path!("/members") view={Lazy::<pages::MembersPage>::new()} ssr=SsrMode::Async/>
                <Route path=path!("/invite/:token") view={Lazy::<pages::InvitePage>::new()} ssr=SsrMode::Async/>
            </Routes>
        </Router>
    }
}
