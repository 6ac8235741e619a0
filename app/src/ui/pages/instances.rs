use crate::api::list_instances;
use crate::domain::{page_href, InstanceSummary, Me, Status};
use crate::ui::components::actions::Actions;
use crate::ui::components::operation::{follow, live_status};
use crate::ui::components::pager::Pager;
use crate::ui::components::{facts, set_http_status, ErrorBox, Shell};
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
    // Bumped when an operation ends, to reload the list in place.
    let version = RwSignal::new(0u32);
    let filters = move || FILTERS.map(|k| (k, get(k)));
    let data = Resource::new(
        move || (FILTERS.map(get), get("after"), get("before"), version.get()),
        |([e, s, q], after, before, _)| list_instances(e, s, q, after, before),
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
                                    .map(|i| view! { <Card i version/> })
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
    }
}

#[component]
fn Card(i: InstanceSummary, version: RwSignal<u32>) -> impl IntoView {
    let op = RwSignal::new(i.in_flight.clone());
    let actions =
        view! { <Actions id=i.id.clone() name=i.name.clone() actions=i.actions.clone() op/> };
    follow(op, version);
    view! {
        <li class="instance-card">
            <div class="row">
                <h2 class="name">
                    <A href=format!("/instances/{}", i.id)>{i.name.clone()}</A>
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
        </li>
    }
}
