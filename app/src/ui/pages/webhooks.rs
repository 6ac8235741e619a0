use super::mark_page_hydrated;
use crate::api::{
    list_webhooks, CreateWebhook, DeleteWebhook, RedeliverWebhook, RotateWebhookSecret,
    SendTestWebhook, SetWebhookEnabled,
};
use crate::domain::webhooks::{WebhookEndpointView, WebhookEvent, WebhooksView};
use crate::ui::components::{island_hydrated, set_http_status, ErrorBox, Shell};
use leptos::prelude::*;
use leptos_meta::Title;

/// The tenant's webhook endpoints, read on the server; managing them is a lazy island, like
/// the API tokens page.
#[component]
pub fn WebhooksPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| list_webhooks());
    view! {
        <Title text="Webhooks · Portico"/>
        <Shell>
            <Suspense fallback=|| view! { <p class="loading">"Loading webhooks…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => {
                            set_http_status(e.status());
                            view! { <ErrorBox error=e/> }.into_any()
                        }
                        Ok(initial) => view! { <WebhookAdmin initial/> }.into_any(),
                    }
                })}
            </Suspense>
        </Shell>
    }
}

/// Adding an endpoint (its secret shown once), and for each: enable or disable, send a test,
/// rotate the secret, remove, and its latest attempts with a way to send any again. The server
/// decides everything again.
#[island(lazy)]
fn WebhookAdmin(initial: WebhooksView) -> impl IntoView {
    island_hydrated();
    mark_page_hydrated("webhooks");
    let create = ServerAction::<CreateWebhook>::new();
    let toggle = ServerAction::<SetWebhookEnabled>::new();
    let rotate = ServerAction::<RotateWebhookSecret>::new();
    let test = ServerAction::<SendTestWebhook>::new();
    let redeliver = ServerAction::<RedeliverWebhook>::new();
    let delete = ServerAction::<DeleteWebhook>::new();
    let data = RwSignal::new(initial);
    let chosen = RwSignal::new(Vec::<&'static str>::new());
    let url = RwSignal::new(String::new());
    let description = RwSignal::new(String::new());
    Effect::new(move |seen: Option<[usize; 6]>| {
        let now = [
            create.version().get(),
            toggle.version().get(),
            rotate.version().get(),
            test.version().get(),
            redeliver.version().get(),
            delete.version().get(),
        ];
        if seen.is_some_and(|s| s != now) {
            leptos::task::spawn_local(async move {
                if let Ok(v) = list_webhooks().await {
                    data.set(v);
                }
            });
        }
        now
    });
    let error = move || {
        [
            create.value().get().and_then(Result::err),
            toggle.value().get().and_then(Result::err),
            rotate.value().get().and_then(Result::err),
            test.value().get().and_then(Result::err),
            redeliver.value().get().and_then(Result::err),
            delete.value().get().and_then(Result::err),
        ]
        .into_iter()
        .flatten()
        .next()
        .map(|e| e.to_string())
    };
    let secret = move || {
        rotate
            .value()
            .get()
            .and_then(Result::ok)
            .or_else(|| create.value().get().and_then(Result::ok))
            .map(|s| s.secret)
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        create.dispatch(CreateWebhook {
            url: url.get_untracked(),
            description: description.get_untracked(),
            event_types: chosen.get_untracked().join(" "),
        });
    };
    view! {
        <h1>"Webhooks"</h1>
        <p class="hint">
            "Portico tells your systems what happens here: each delivery is a signed POST, as the "
            "Standard Webhooks specification says, tried again for up to a day and a half until "
            "your endpoint answers 2xx. Deliveries carry what an admin sees, never secret parameters."
        </p>
        <Show when=move || error().is_some()>
            <div class="error-box" role="alert">{error}</div>
        </Show>
        <Show when=move || data.with(|d| d.over_hourly_limit)>
            <p class="notice" role="status">
                {move || format!(
                    "This tenant sent its {} deliveries for this hour: the rest wait in the queue and go out next hour. Nothing is dropped.",
                    data.with(|d| d.deliveries_per_hour)
                )}
            </p>
        </Show>
        <section aria-labelledby="new-webhook-heading" class="panel">
            <h2 id="new-webhook-heading">"New endpoint"</h2>
            <form on:submit=submit class="filters webhook-form">
                <label>
                    <span>"URL"</span>
                    <input name="url" type="url" required placeholder="https://…" autocomplete="off"
                        prop:value=url on:input=move |ev| url.set(event_target_value(&ev))/>
                </label>
                <label>
                    <span>"Description"</span>
                    <input name="description" maxlength="200" autocomplete="off"
                        prop:value=description on:input=move |ev| description.set(event_target_value(&ev))/>
                </label>
                <fieldset class="event-types">
                    <legend>"Events"</legend>
                    {WebhookEvent::ALL
                        .into_iter()
                        .map(|e| {
                            let name = e.as_str();
                            view! {
                                <label class="check">
                                    <input type="checkbox" value=name
                                        prop:checked=move || chosen.with(|c| c.contains(&name))
                                        on:change=move |ev| {
                                            let on = event_target_checked(&ev);
                                            chosen.update(|c| {
                                                c.retain(|x| *x != name);
                                                if on { c.push(name); }
                                            });
                                        }/>
                                    <span>{name}</span>
                                </label>
                            }
                        })
                        .collect_view()}
                </fieldset>
                <button type="submit" class="primary">"Add endpoint"</button>
            </form>
            <Show when=move || secret().is_some()>
                <p role="status">
                    "Copy the signing secret now: it is not shown again. "
                    <input class="invite-link" readonly aria-label="Signing secret" prop:value=secret/>
                </p>
            </Show>
        </section>
        <h2>"Endpoints"</h2>
        {move || {
            let list = data.with(|d| d.endpoints.clone());
            if list.is_empty() {
                return view! { <p class="empty">"None yet."</p> }.into_any();
            }
            view! {
                <ul class="webhook-list" aria-label="Webhook endpoints">
                    {list.into_iter().map(|e| view! {
                        <Endpoint e toggle rotate test redeliver delete/>
                    }).collect_view()}
                </ul>
            }.into_any()
        }}
    }
}

#[component]
fn Endpoint(
    e: WebhookEndpointView,
    toggle: ServerAction<SetWebhookEnabled>,
    rotate: ServerAction<RotateWebhookSecret>,
    test: ServerAction<SendTestWebhook>,
    redeliver: ServerAction<RedeliverWebhook>,
    delete: ServerAction<DeleteWebhook>,
) -> impl IntoView {
    let id = e.id.clone();
    let state = if e.enabled { "Enabled" } else { "Disabled" };
    let queue = format!("{} waiting · {} failed", e.pending, e.failed);
    let (toggle_label, enable) = if e.enabled {
        ("Disable", false)
    } else {
        ("Enable", true)
    };
    let (i1, i2, i3, i4) = (id.clone(), id.clone(), id.clone(), id.clone());
    view! {
        <li class="webhook">
            <p><strong class="webhook-url">{e.url.clone()}</strong> " " <span class="hint">{e.description.clone()}</span></p>
            <p>
                <span class=if e.enabled { "badge status-running" } else { "badge status-stopped" }>{state}</span>
                " " {e.event_types.join(", ")} " · " {queue}
            </p>
            {e.disabled_reason.clone().map(|r| view! {
                <p class="notice" role="status">{format!("Portico disabled this endpoint: {r}. Enable it once it works again; what waits goes out then.")}</p>
            })}
            {e.failing_since.clone().map(|s| view! { <p class="hint">{format!("Failing since {s}.")}</p> })}
            {e.rotating_until.clone().map(|s| view! { <p class="hint">{format!("The previous secret also signs until {s}.")}</p> })}
            <div class="actions">
                <button type="button" on:click=move |_| { toggle.dispatch(SetWebhookEnabled { id: i1.clone(), enabled: enable }); }>{toggle_label}</button>
                <button type="button" on:click=move |_| { test.dispatch(SendTestWebhook { id: i2.clone() }); }>"Send test"</button>
                <button type="button" on:click=move |_| { rotate.dispatch(RotateWebhookSecret { id: i3.clone() }); }>"Rotate secret"</button>
                <button type="button" class="danger" on:click=move |_| { delete.dispatch(DeleteWebhook { id: i4.clone() }); }>"Remove"</button>
            </div>
            <details>
                <summary>"Latest attempts"</summary>
                {if e.attempts.is_empty() {
                    view! { <p class="empty">"None yet."</p> }.into_any()
                } else {
                    view! {
                        <div class="table-scroll"><table class="config attempts">
                            <thead><tr><th>"When"</th><th>"Event"</th><th>"Answer"</th><th>"State"</th><th></th></tr></thead>
                            <tbody>
                                {e.attempts.clone().into_iter().map(|a| {
                                    let answer = match a.status {
                                        Some(s) => format!("{s} in {} ms", a.latency_ms),
                                        None => a.response.clone(),
                                    };
                                    let (id, msg) = (id.clone(), a.message_id.clone());
                                    view! {
                                        <tr>
                                            <td>{a.attempted_at.clone()}</td>
                                            <td>{a.event_type.clone()}</td>
                                            <td title=a.response.clone()>{answer}</td>
                                            <td>{a.state.clone()}</td>
                                            <td>
                                                <button type="button" on:click=move |_| {
                                                    redeliver.dispatch(RedeliverWebhook { id: id.clone(), message_id: msg.clone() });
                                                }>"Send again"</button>
                                            </td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table></div>
                    }.into_any()
                }}
            </details>
        </li>
    }
}
