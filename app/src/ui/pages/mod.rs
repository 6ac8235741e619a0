mod audit;
mod create;
mod instance;
mod instances;
mod members;
mod sign_in;
mod tokens;
mod webhooks;

pub use audit::AuditPage;
pub use create::CreatePage;
pub use instance::InstancePage;
pub use instances::InstanceList;
pub use members::{InvitePage, MembersPage};
pub use sign_in::SignIn;
pub use tokens::TokensPage;
pub use webhooks::WebhooksPage;

use super::components::set_http_status;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::{Redirect, A};

#[component]
pub fn Home() -> impl IntoView {
    view! { <Redirect path="/instances"/> }
}

#[component]
pub fn NotFound() -> impl IntoView {
    set_http_status(404);
    view! {
        <Title text="Not found · Portico"/>
        <main id="main" class="page narrow">
            <h1>"Not found"</h1>
            <p>"There is nothing here, or you do not have access to it."</p>
            <p class="links">
                <A href="/instances">"Back to your instances"</A>
            </p>
        </main>
    }
}

/// A lazily loaded page hydrates after the rest of the app, once its chunk has arrived; this
/// marks that moment (browser tests wait for it, as they wait for `data-hydrated`).
fn mark_page_hydrated(page: &'static str) {
    use leptos::prelude::*;
    Effect::new(move |_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-page-hydrated", page);
        }
    });
}
