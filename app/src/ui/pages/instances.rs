use crate::api::list_instances;
use crate::domain::{Me, Status};
use crate::ui::components::{facts, ErrorBox, Shell, StatusBadge};
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
    let filters = move || (get("environment"), get("status"), get("q"));
    let data = Resource::new(filters, |(e, s, q)| list_instances(e, s, q));

    view! {
        <h1>"Instances"</h1>
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
        <Suspense fallback=|| view! { <p class="loading">"Loading instances…"</p> }>
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
                                    .map(|i| {
                                        view! {
                                            <li class="instance-card">
                                                <div class="row">
                                                    <A href=format!("/instances/{}", i.id) attr:class="name">
                                                        {i.name.clone()}
                                                    </A>
                                                    <StatusBadge status=i.status/>
                                                </div>
                                                {facts("facts", vec![
                                                    ("Environment", i.environment_name.clone()),
                                                    ("Plan", i.plan_name.clone()),
                                                    ("Region", i.region.clone()),
                                                    ("Replicas", i.replicas.to_string()),
                                                    ("Updated", i.updated_at.clone()),
                                                ])}
                                            </li>
                                        }
                                    })
                                    .collect_view()}
                            </ul>
                        }
                            .into_any()
                    }
                }
            })}
        </Suspense>
    }
}
