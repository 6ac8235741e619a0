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
                            <main id="main" class="page">{children.read_value()()}</main>
                        }
                            .into_any()
                    }
                    // Inside a frame, the browser may keep no cookie for the portal: the page
                    // then signs in with the token /embed handed it (api/client.rs).
                    Err(AppError::Unauthenticated) if in_frame() => {
                        view! { <FrameSignIn me/> }.into_any()
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

/// Whether this page shows inside a frame: the browser says so to the server
/// (`Sec-Fetch-Dest: iframe`), and the page sees its own window is not the top one.
fn in_frame() -> bool {
    #[cfg(feature = "ssr")]
    {
        use_context::<http::request::Parts>().is_some_and(|p| {
            p.headers
                .get("sec-fetch-dest")
                .is_some_and(|d| d.as_bytes() == b"iframe")
        })
    }
    #[cfg(not(feature = "ssr"))]
    {
        let w = window();
        w.top().ok().flatten().is_some_and(|top| top != w)
    }
}

/// Signed out inside a frame: tries the embedded session's token once, with each call; without
/// one (or when the server refuses it), goes to the sign-in page.
#[component]
fn FrameSignIn(me: Resource<Result<Me, AppError>>) -> impl IntoView {
    // The page is fine; only its data waits for the token.
    set_http_status(200);
    let navigate = leptos_router::hooks::use_navigate();
    Effect::new(move |_| {
        if !crate::api::client::active() && crate::api::client::activate() {
            me.refetch();
        } else {
            crate::api::client::forget();
            navigate("/sign-in", Default::default());
        }
    });
    view! { <p class="loading">"Signing in…"</p> }
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
