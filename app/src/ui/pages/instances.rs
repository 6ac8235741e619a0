use crate::api::list_instances;
use crate::domain::Status;
use crate::ui::components::{ErrorBox, Shell, StatusBadge};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::{Form, A};
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
    let envs = Resource::new(|| (), |_| crate::api::current_user());

    view! {
        <h1>"Instances"</h1>
        <Form method="GET" action="/instances" attr:class="filters">
            <label>
                <span>"Environment"</span>
                <select name="environment">
                    <option value="">"All environments"</option>
                    <Suspense>
                        {move || Suspend::new(async move {
                            let selected = get("environment");
                            envs.await
                                .map(|me| me.environments)
                                .unwrap_or_default()
                                .into_iter()
                                .map(|(id, name)| {
                                    let sel = id == selected;
                                    view! { <option value=id selected=sel>{name}</option> }
                                })
                                .collect_view()
                        })}
                    </Suspense>
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
        </Form>
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
                                    .map(|i| {
                                        view! {
                                            <li class="instance-card">
                                                <div class="row">
                                                    <A href=format!("/instances/{}", i.id) attr:class="name">
                                                        {i.name.clone()}
                                                    </A>
                                                    <StatusBadge status=i.status/>
                                                </div>
                                                <dl class="facts">
                                                    <div><dt>"Environment"</dt><dd>{i.environment_name.clone()}</dd></div>
                                                    <div><dt>"Plan"</dt><dd>{i.plan_name.clone()}</dd></div>
                                                    <div><dt>"Region"</dt><dd>{i.region.clone()}</dd></div>
                                                    <div><dt>"Replicas"</dt><dd>{i.replicas}</dd></div>
                                                    <div><dt>"Updated"</dt><dd>{i.updated_at.clone()}</dd></div>
                                                </dl>
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
        </Transition>
    }
}
