pub mod actions;
pub mod form;
pub mod operation;
pub mod pager;

use crate::api::{current_user, AppError, SignOut};
use crate::domain::{Me, Status};
use leptos::prelude::*;
use leptos_router::components::{Redirect, A};

/// The signed-in frame: loads the user, sends anonymous visitors to sign-in, and renders
/// the header around the page.
#[component]
pub fn Shell(children: ChildrenFn) -> impl IntoView {
    let me = Resource::new(|| (), |_| current_user());
    let children = StoredValue::new(children);
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match me.await {
                    Ok(me) => {
                        // Pages inside the frame read the signed-in user from context.
                        provide_context(me.clone());
                        let suspended = me.suspended.then(|| view! {
                            <p class="suspended-banner" role="status">
                                "Your organisation's account is suspended: you can see everything, but changes are off until your provider resumes it."
                            </p>
                        });
                        let header = if me.hide_header {
                            view! {
                                <EmbeddedNav
                                    can_read_audit=me.can_read_audit
                                    can_manage_members=me.can_manage_members
                                />
                            }
                                .into_any()
                        } else {
                            view! { <Header me/> }.into_any()
                        };

                        view! {
                            {header}
                            {suspended}
                            // Whether the page follows changes as they happen (ui/live.js).
                            <p id="live-state" class="live-state" role="status"></p>
                            <main id="main" class="page">{children.read_value()()}</main>
                        }
                            .into_any()
                    }
                    // Inside a frame, the browser may keep no cookie for the portal: the page's
                    // script (ui/embed.js) then loads it again with the token /embed handed it.
                    Err(AppError::Unauthenticated) if in_frame() => {
                        view! { <FrameSignIn/> }.into_any()
                    }
                    Err(AppError::Unauthenticated) => view! { <Redirect path="/sign-in"/> }.into_any(),
                    Err(e) => {
                        set_http_status(e.status());
                        view! { <ErrorBox error=e/> }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}

/// Whether this page shows inside a frame: the browser says so (`Sec-Fetch-Dest: iframe`).
#[cfg(feature = "ssr")]
fn in_frame() -> bool {
    use_context::<http::request::Parts>().is_some_and(|p| {
        p.headers
            .get("sec-fetch-dest")
            .is_some_and(|d| d.as_bytes() == b"iframe")
    })
}

/// Pages are rendered on the server only.
#[cfg(not(feature = "ssr"))]
fn in_frame() -> bool {
    false
}

/// Whether this page may show inside a frame: unless the browser says it is the top-level
/// document (`Sec-Fetch-Dest: document`), it may (older browsers send no such header).
#[cfg(feature = "ssr")]
pub fn may_be_framed() -> bool {
    use_context::<http::request::Parts>().is_none_or(|p| {
        p.headers
            .get("sec-fetch-dest")
            .is_none_or(|d| d.as_bytes() != b"document")
    })
}

/// Signed out inside a frame. `ui/embed.js` finds this element and, with the embedded session's
/// token, loads the page again carrying it; without one it goes to the sign-in page.
#[component]
fn FrameSignIn() -> impl IntoView {
    // The page is fine; only its content waits for the token.
    set_http_status(200);
    view! { <p class="loading" id="frame-sign-in">"Signing in…"</p> }
}

#[component]
fn Header(me: Me) -> impl IntoView {
    let sign_out = ServerAction::<SignOut>::new();
    view! {
        <header class="topbar">
            <a class="skip" href="#main">"Skip to content"</a>
            <A href="/instances" attr:class="brand">
                <img src=me.logo_url.clone() alt="" width="28" height="28"/>
                <span>{me.provider_name.clone()}</span>
            </A>
            <nav aria-label="Portico">
                <A href="/instances">"Instances"</A>
                {me.can_read_audit.then(|| view! { <A href="/audit">"Audit log"</A> })}
                {me.can_manage_members.then(|| view! { <A href="/members">"Members"</A> })}
                {me.can_manage_members.then(|| view! { <A href="/tokens">"API tokens"</A> })}
                {me.can_manage_members.then(|| view! { <A href="/webhooks">"Webhooks"</A> })}
            </nav>
            <div class="who">
                <span class="tenant">{me.tenant_name.clone()}</span>
                <span class="user" title=me.email.clone()>
                    {me.email.clone()} " · " {me.role.as_str()}
                </span>
                <ActionForm action=sign_out attr:class="sign-out">
                    <button type="submit" class="link-button">"Sign out"</button>
                </ActionForm>
            </div>
        </header>
    }
}

/// Inside the provider's iframe: the portal's own pages, without brand, user or sign-out.
#[component]
fn EmbeddedNav(can_read_audit: bool, can_manage_members: bool) -> impl IntoView {
    view! {
        <nav class="embed-nav" aria-label="Portico">
            <A href="/instances">"Instances"</A>
            {can_read_audit.then(|| view! { <A href="/audit">"Audit log"</A> })}
            {can_manage_members.then(|| view! { <A href="/members">"Members"</A> })}
            {can_manage_members.then(|| view! { <A href="/tokens">"API tokens"</A> })}
            {can_manage_members.then(|| view! { <A href="/webhooks">"Webhooks"</A> })}
        </nav>
    }
}

#[component]
pub fn StatusBadge(status: Status) -> impl IntoView {
    view! { <span class=format!("badge status-{}", status.as_str())>{status.label()}</span> }
}

#[component]
pub fn ErrorBox(error: AppError) -> impl IntoView {
    view! {
        <div class="error-box" role="alert">
            {error.to_string()}
        </div>
    }
}

/// Counts this island as hydrated once it is (effects run only in the browser, after
/// hydration): the bundle marks the page `data-hydrated` when every island on it has counted
/// (frontend/src/lib.rs), and browser tests wait for that. Every island calls this first.
pub fn island_hydrated() {
    Effect::new(|_| {
        #[cfg(feature = "hydrate")]
        {
            use leptos::wasm_bindgen::JsValue;
            use leptos::web_sys::js_sys::Reflect;
            let w = window();
            let key = JsValue::from_str(HYDRATED_ISLANDS);
            let n = Reflect::get(&w, &key)
                .ok()
                .and_then(|v| v.as_f64())
                .unwrap_or(0.0);
            let _ = Reflect::set(&w, &key, &JsValue::from_f64(n + 1.0));
        }
    });
}

/// The global that counts hydrated islands (see [`island_hydrated`]).
pub const HYDRATED_ISLANDS: &str = "__porticoIslands";

/// Marks the response with an HTTP status while rendering on the server.
pub fn set_http_status(code: u16) {
    #[cfg(feature = "ssr")]
    if let (Some(opts), Ok(code)) = (
        use_context::<leptos_axum::ResponseOptions>(),
        http::StatusCode::from_u16(code),
    ) {
        opts.set_status(code);
    }
    #[cfg(not(feature = "ssr"))]
    let _ = code;
}

/// A definition list of label/value pairs. One generic shape for every fact list keeps the
/// browser bundle small.
pub fn facts(class: &'static str, items: Vec<(&'static str, String)>) -> impl IntoView {
    view! {
        <dl class=class>
            {items
                .into_iter()
                .map(|(label, value)| view! { <div><dt>{label}</dt><dd>{value}</dd></div> })
                .collect_view()}
        </dl>
    }
}
