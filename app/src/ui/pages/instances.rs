use crate::api::{get_instance_summary, list_instances, AppError};
use crate::domain::{page_href, InstanceSummary, Me, Status};
use crate::ui::components::actions::Actions;
use crate::ui::components::operation::{follow, live_status, reload_on_events};
use crate::ui::components::pager::Pager;
use crate::ui::components::{facts, island_hydrated, set_http_status, ErrorBox, Shell};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_query_map;

/// The list's filters, in the order the form shows them; the page links keep them.
const FILTERS: [&str; 3] = ["environment", "status", "q"];

#[component]
pub fn InstanceList() -> impl IntoView {
    view! {
        <Title text="Instances · Portico"/>
        <Shell>
            <Instances/>
        </Shell>
    }
}

#[component]
fn Instances() -> impl IntoView {
    let query = use_query_map();
    let get = move |k: &str| query.read().get(k).unwrap_or_default();
    let filters = move || FILTERS.map(|k| (k, get(k)));
    let data = Resource::new(
        move || (FILTERS.map(get), get("after"), get("before")),
        |([e, s, q], after, before)| list_instances(e, s, q, after, before),
    );
    let paged = move || !(get("after").is_empty() && get("before").is_empty());
    let create = use_context::<Me>().map(|me| me.create);

    view! {
        <div class="page-head">
            <h1>"Instances"</h1>
            {create
                .map(|c| match c.reason {
                    None => view! { <A href="/instances/new" attr:class="button primary">"New instance"</A> }.into_any(),
                    Some(why) => view! { <p class="hint">{why}</p> }.into_any(),
                })}
        </div>
        <form method="get" action="/instances" class="filters">
            <label>
                <span>"Environment"</span>
                <select name="environment">
                    <option value="">"All environments"</option>
                    {move || {
                        let selected = get("environment");
                        use_context::<Me>()
                            .map(|me| me.environments)
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(id, name)| {
                                let sel = id == selected;
                                view! { <option value=id selected=sel>{name}</option> }
                            })
                            .collect_view()
                    }}
                </select>
            </label>
            <label>
                <span>"Status"</span>
                <select name="status">
                    <option value="">"Any status"</option>
                    {move || {
                        let selected = get("status");
                        Status::ALL
                            .into_iter()
                            .filter(|s| *s != Status::Deleted)
                            .map(|s| {
                                let sel = s.as_str() == selected;
                                view! { <option value=s.as_str() selected=sel>{s.label()}</option> }
                            })
                            .collect_view()
                    }}
                </select>
            </label>
            <label class="grow">
                <span>"Search"</span>
                <input type="search" name="q" placeholder="Instance name" prop:value=move || get("q")/>
            </label>
            <button type="submit">"Apply"</button>
        </form>
        // Put in place again when instances come and go (ui/live.js).
        <div id="instance-results" data-live="instance.created instance.deleted">
        <Transition fallback=|| view! { <p class="loading">"Loading instances…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => {
                        set_http_status(e.status());
                        view! { <ErrorBox error=e/> }.into_any()
                    }
                    Ok(page) if page.items.is_empty() => {
                        view! {
                            <p class="empty">"No instances match these filters."</p>
                            {paged()
                                .then(|| {
                                    let first = page_href("/instances", &filters(), "after", "");
                                    view! { <p><a href=first>"First page"</a></p> }
                                })}
                        }
                            .into_any()
                    }
                    Ok(page) => {
                        view! {
                            <p class="count">{page.summary("instance", "instances")}</p>
                            <ul class="instance-list" aria-label="Instances">
                                {page
                                    .items
                                    .into_iter()
                                    .map(|i| view! { <li class="instance-card"><InstanceCard i/></li> })
                                    .collect_view()}
                            </ul>
                            <Pager
                                label="Pages of instances"
                                path="/instances"
                                filters=filters().to_vec()
                                previous=page.previous
                                next=page.next
                                previous_text="Previous page"
                                next_text="Next page"
                            />
                        }
                            .into_any()
                    }
                }
            })}
        </Transition>
        </div>
    }
}

/// One instance in the list: an island, since its status follows a running operation and its
/// actions open confirmations. When the live stream says the instance changed, or an operation
/// it follows ends, it reloads its own instance in place.
#[island]
fn InstanceCard(i: InstanceSummary) -> impl IntoView {
    island_hydrated();
    let id = i.id.clone();
    let current = RwSignal::new(Some(i));
    let version = RwSignal::new(0u32);
    reload_on_events(id.clone(), version);
    Effect::new(move |seen: Option<u32>| {
        let v = version.get();
        if seen.is_some_and(|s| s != v) {
            let id = id.clone();
            leptos::task::spawn_local(async move {
                match get_instance_summary(id).await {
                    Ok(fresh) => current.set(Some(fresh)),
                    // Deleted meanwhile.
                    Err(AppError::NotFound) => current.set(None),
                    // Signed out or unreachable: keep what is shown.
                    Err(_) => {}
                }
            });
        }
        v
    });
    move || match current.get() {
        Some(i) => card_view(i, version).into_any(),
        None => view! { <p class="status-note">"This instance was deleted."</p> }.into_any(),
    }
}

fn card_view(i: InstanceSummary, version: RwSignal<u32>) -> impl IntoView {
    let op = RwSignal::new(i.in_flight.clone());
    let actions =
        view! { <Actions id=i.id.clone() name=i.name.clone() actions=i.actions.clone() op/> };
    follow(op, version);
    view! {
            <div class="row">
                <h2 class="name">
                    <a href=format!("/instances/{}", i.id)>{i.name.clone()}</a>
                </h2>
                <span class="live">{live_status(&i.id, i.status, op)}</span>
            </div>
            {i.status_note.clone().map(|note| view! { <p class="status-note">{note}</p> })}
            {facts("facts", vec![
                ("Environment", i.environment_name.clone()),
                ("Plan", i.plan_name.clone()),
                ("Region", i.region.clone()),
                ("Replicas", i.replicas.to_string()),
                ("Updated", i.updated_at.clone()),
            ])}
            {actions}
    }
}
