use super::mark_page_hydrated;
use crate::api::{list_api_tokens, CreateApiToken, RevokeApiToken};
use crate::domain::api_token::ApiTokenView;
use crate::domain::Role;
use crate::ui::components::{island_hydrated, set_http_status, ErrorBox, Shell};
use leptos::prelude::*;
use leptos_meta::Title;

/// The tenant's API tokens, read on the server; creating and revoking them is a lazy island,
/// like the members page's forms.
#[component]
pub fn TokensPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| list_api_tokens());
    view! {
        <Title text="API tokens · Portico"/>
        <Shell>
            <Suspense fallback=|| view! { <p class="loading">"Loading API tokens…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => {
                            set_http_status(e.status());
                            view! { <ErrorBox error=e/> }.into_any()
                        }
                        Ok(initial) => view! { <TokenAdmin initial/> }.into_any(),
                    }
                })}
            </Suspense>
        </Shell>
    }
}

/// Creating a token (its secret shown once), the list with when each was last used, and
/// revoking. The server decides everything again.
#[island(lazy)]
fn TokenAdmin(initial: Vec<ApiTokenView>) -> impl IntoView {
    island_hydrated();
    mark_page_hydrated("tokens");
    let create = ServerAction::<CreateApiToken>::new();
    let revoke = ServerAction::<RevokeApiToken>::new();
    let data = RwSignal::new(initial);
    Effect::new(move |seen: Option<[usize; 2]>| {
        let now = [create.version().get(), revoke.version().get()];
        if seen.is_some_and(|s| s != now) {
            leptos::task::spawn_local(async move {
                if let Ok(list) = list_api_tokens().await {
                    data.set(list);
                }
            });
        }
        now
    });
    let error = move || {
        create
            .value()
            .get()
            .and_then(Result::err)
            .or_else(|| revoke.value().get().and_then(Result::err))
            .map(|e| e.to_string())
    };
    let secret = move || create.value().get().and_then(Result::ok).map(|c| c.secret);
    view! {
        <h1>"API tokens"</h1>
        <p class="hint">
            "Scripts and the portico-ctl command line act with a token, as a member with its role would. "
            "Send it as Authorization: Bearer <token> to /api/v1, which "
            <code>"/api/v1/openapi.json"</code>" describes."
        </p>
        <Show when=move || error().is_some()>
            <div class="error-box" role="alert">{error}</div>
        </Show>
        <section aria-labelledby="new-token-heading" class="panel">
            <h2 id="new-token-heading">"New token"</h2>
            <ActionForm action=create attr:class="filters">
                <label>
                    <span>"Name"</span>
                    <input name="name" required maxlength="64" autocomplete="off"/>
                </label>
                <label>
                    <span>"Role"</span>
                    <select name="role">
                        {Role::ALL
                            .into_iter()
                            .map(|r| view! { <option value=r.as_str() selected=r == Role::Viewer>{r.as_str()}</option> })
                            .collect_view()}
                    </select>
                </label>
                <label>
                    <span>"Expires after (days)"</span>
                    <input name="expires_in_days" type="number" min="1" max="3650" placeholder="never"/>
                </label>
                <button type="submit" class="primary">"Create token"</button>
            </ActionForm>
            <Show when=move || secret().is_some()>
                <p role="status">
                    "Copy the token now: it is not shown again. "
                    <input class="invite-link" readonly aria-label="New API token" prop:value=secret/>
                </p>
            </Show>
        </section>
        <h2>"Tokens"</h2>
        {move || {
            let list = data.get();
            if list.is_empty() {
                return view! { <p class="empty">"None yet."</p> }.into_any();
            }
            view! {
                <ul class="member-list" aria-label="API tokens">
                    {list.into_iter().map(|t| {
                        let used = t.last_used_at.clone().map_or("never used".to_owned(), |u| format!("last used {u}"));
                        let expiry = t.expires_at.clone().map_or(String::new(), |e| format!(", expires {e}"));
                        let what = format!("{} · created by {} on {}{expiry} · {used}", t.role.as_str(), t.created_by, t.created_at);
                        let label = format!("Revoke {}", t.name);
                        let id = t.id.clone();
                        view! {
                            <li>
                                <span><strong>{t.name.clone()}</strong> " " {what}</span>
                                {if t.ended {
                                    view! { <span class="hint">"Revoked or expired"</span> }.into_any()
                                } else {
                                    view! {
                                        <ActionForm action=revoke attr:class="inline">
                                            <input type="hidden" name="id" value=id/>
                                            <button type="submit" class="danger">{label}</button>
                                        </ActionForm>
                                    }.into_any()
                                }}
                            </li>
                        }
                    }).collect_view()}
                </ul>
            }.into_any()
        }}
    }
}
