use crate::api::list_instances;
use crate::domain::{InstanceSummary, Me, Status};
use crate::ui::components::actions::Actions;
use crate::ui::components::operation::{follow, live_status};
use crate::ui::components::{facts, ErrorBox, Shell};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_query_map;

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
    let filters = move || (get("environment"), get("status"), get("q"), version.get());
    let data = Resource::new(filters, |(e, s, q, _)| list_instances(e, s, q));
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
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(list) if list.is_empty() => {
                        view! { <p class="empty">"No instances match these filters."</p> }.into_any()
                    }
                    Ok(list) => {
                        view! {
                            <p class="count">{format!("{} instance{}", list.len(), if list.len() == 1 { "" } else { "s" })}</p>
                            <ul class="instance-list" aria-label="Instances">
                                {list
                                    .into_iter()
                                    .map(|i| view! { <Card i version/> })
                                    .collect_view()}
                            </ul>
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
