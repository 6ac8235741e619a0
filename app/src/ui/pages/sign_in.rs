use crate::api::{sign_in_options, SignIn as SignInFn, SignInFailure};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn SignIn() -> impl IntoView {
    let action = ServerAction::<SignInFn>::new();
    let options = OnceResource::new(sign_in_options());
    // Each issuer's button leaves the portal for the identity provider, at the top level:
    // identity providers refuse to show inside a frame.
    let sso = move || {
        let buttons = options.get().and_then(Result::ok).unwrap_or_default();
        (!buttons.is_empty()).then(|| {
            view! {
                <div class="sso">
                    {buttons
                        .into_iter()
                        .map(|b| {
                            view! {
                                <a
                                    class="button primary"
                                    href=format!("/sso/{}/start", b.id)
                                    target="_top"
                                    rel="external"
                                >
                                    {b.label}
                                </a>
                            }
                        })
                        .collect_view()}
                    <p class="or">"or with your password"</p>
                </div>
            }
        })
    };
    // A plain form post (no script yet, or none at all) comes back as `?error=<code>`.
    let query = use_query_map();
    let error = move || match action.value().get() {
        Some(result) => result.err().map(|e| e.to_string()),
        None => query
            .read()
            .get("error")
            .and_then(|code| SignInFailure::from_code(&code))
            .map(SignInFailure::message),
    };
    view! {
        <Title text="Sign in · Portico"/>
        <main id="main" class="sign-in">
            <div class="card">
                <img src="/logo.svg" alt="" width="40" height="40"/>
                <h1>"Sign in"</h1>
                <Suspense fallback=|| ()>{sso}</Suspense>
                <ActionForm action=action>
                    <label for="email">"Email"</label>
                    <input
                        id="email"
                        name="email"
                        type="email"
                        autocomplete="username"
                        required
                        autofocus
                    />
                    <label for="password">"Password"</label>
                    <input
                        id="password"
                        name="password"
                        type="password"
                        autocomplete="current-password"
                        required
                    />
                    <Show when=move || error().is_some()>
                        <p class="form-error" role="alert">{error}</p>
                    </Show>
                    <button type="submit" class="primary" disabled=move || action.pending().get()>
                        "Sign in"
                    </button>
                </ActionForm>
            </div>
        </main>
    }
}
