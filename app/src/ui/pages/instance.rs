use crate::api::{get_instance, AppError};
use crate::domain::InstanceDetail;
use crate::ui::components::{facts, set_http_status, ErrorBox, Shell, StatusBadge};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;

#[component]
pub fn InstancePage() -> impl IntoView {
    view! {
        <Shell>
            <Instance/>
        </Shell>
    }
}

#[component]
fn Instance() -> impl IntoView {
    let params = use_params_map();
    let data = Resource::new(
        move || params.read().get("id").unwrap_or_default(),
        get_instance,
    );
    view! {
        <p class="back">
            <A href="/instances">"← All instances"</A>
        </p>
        <Suspense fallback=|| view! { <p class="loading">"Loading instance…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(i) => view! { <Detail i/> }.into_any(),
                    Err(AppError::NotFound) => {
                        set_http_status(404);
                        view! {
                            <Title text="Not found · Portico"/>
                            <h1>"Not found"</h1>
                            <p>"There is no such instance, or you do not have access to it."</p>
                        }
                            .into_any()
                    }
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Detail(i: InstanceDetail) -> impl IntoView {
    let r = i.resources;
    view! {
        <Title text=format!("{} · Portico", i.name)/>
        <div class="detail-head">
            <h1>{i.name.clone()}</h1>
            <StatusBadge status=i.status/>
        </div>
        {i.status_reason.clone().map(|why| view! { <p class="status-reason">{why}</p> })}
        <section aria-labelledby="overview">
            <h2 id="overview">"Overview"</h2>
            {facts("facts wide", vec![
                ("Plan", i.plan_name.clone()),
                ("Environment", i.environment_name.clone()),
                ("Region", i.region_name.clone()),
                ("Created", i.created_at.clone()),
                ("Updated", i.updated_at.clone()),
            ])}
        </section>
        <section aria-labelledby="actions">
            <h2 id="actions">"What you can do"</h2>
            <ul class="actions" aria-label="Actions">
                {i.actions
                    .iter()
                    .map(|a| {
                        let state = if a.allowed() { "allowed" } else { "denied" };
                        view! {
                            <li class=format!("action {state}")>
                                <span class="action-name">{a.label()}</span>
                                <span class="action-why">
                                    {a.reason.clone().unwrap_or_else(|| "Available".into())}
                                </span>
                            </li>
                        }
                    })
                    .collect_view()}
            </ul>
        </section>
        <section aria-labelledby="resources">
            <h2 id="resources">"Resources"</h2>
            {facts("facts wide", vec![
                ("Replicas", r.replicas.to_string()),
                ("CPU", format!("{} mCPU", r.cpu_millicores)),
                ("Memory", format!("{} MiB", r.memory_mib)),
                ("Storage", format!("{} GiB", r.storage_gib)),
            ])}
        </section>
        <section aria-labelledby="configuration">
            <h2 id="configuration">"Configuration"</h2>
            <table class="config">
                <thead>
                    <tr><th scope="col">"Parameter"</th><th scope="col">"Value"</th></tr>
                </thead>
                <tbody>
                    {i.parameters
                        .iter()
                        .map(|p| view! { <tr><th scope="row">{p.label.clone()}</th><td>{p.value.clone()}</td></tr> })
                        .collect_view()}
                </tbody>
            </table>
        </section>
        <section aria-labelledby="endpoints">
            <h2 id="endpoints">"Endpoints"</h2>
            <ul class="endpoints">
                {i.endpoints
                    .iter()
                    .map(|e| view! { <li><span class="label">{e.label.clone()}</span> <code>{e.url.clone()}</code></li> })
                    .collect_view()}
            </ul>
        </section>
    }
}
