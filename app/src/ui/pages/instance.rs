use crate::api::{get_instance, AppError};
use crate::domain::{InstanceDetail, Me, Operation};
use crate::ui::components::actions::Actions;
use crate::ui::components::operation::{follow, live_status, reload_on_events};
use crate::ui::components::{facts, island_hydrated, set_http_status, ErrorBox, Shell};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_params_map, use_query_map};

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
    let query = use_query_map();
    let data = Resource::new(
        move || params.read().get("id").unwrap_or_default(),
        get_instance,
    );
    // `?action=scale` (from the list) opens that action's form.
    let open = move || {
        query
            .read_untracked()
            .get("action")
            .and_then(|a| Operation::parse(&a))
    };
    let can_read_audit = use_context::<Me>().is_some_and(|me| me.can_read_audit);
    view! {
        <p class="back">
            <A href="/instances">"← All instances"</A>
        </p>
        <Transition fallback=|| view! { <p class="loading">"Loading instance…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(i) => view! {
                        <Title text=format!("{} · Portico", i.name)/>
                        <InstanceView i open=open() can_read_audit/>
                    }
                    .into_any(),
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
        </Transition>
    }
}

/// The instance: an island, since its status follows a running operation and its actions open
/// confirmations and forms. When an operation ends, it reloads the instance in place. Lazy: the
/// forms (scale, configuration) and the detail's decoding are a chunk of their own, out of what
/// the instance list needs.
#[island(lazy)]
fn InstanceView(i: InstanceDetail, open: Option<Operation>, can_read_audit: bool) -> impl IntoView {
    island_hydrated();
    let id = i.id.clone();
    let current = RwSignal::new(i);
    let version = RwSignal::new(0u32);
    reload_on_events(id.clone(), version);
    Effect::new(move |seen: Option<u32>| {
        let v = version.get();
        if seen.is_some_and(|s| s != v) {
            let id = id.clone();
            leptos::task::spawn_local(async move {
                match get_instance(id).await {
                    Ok(d) => current.set(d),
                    // Gone (deleted) or signed out: the page, loaded again, says which.
                    Err(_) => {
                        let _ = window().location().reload();
                    }
                }
            });
        }
        v
    });
    // The form asked for in the address opens on arrival only.
    move || {
        let open = open.filter(|_| version.get_untracked() == 0);
        detail_view(current.get(), version, open, can_read_audit)
    }
}

fn detail_view(
    i: InstanceDetail,
    version: RwSignal<u32>,
    open: Option<Operation>,
    can_read_audit: bool,
) -> impl IntoView {
    let r = i.resources;
    let op = RwSignal::new(i.in_flight.clone());
    follow(op, version);
    let audit = can_read_audit.then(|| {
        view! {
            <p class="links">
                <a href=format!("/audit?instance_id={}", i.id)>"Audit log of this instance"</a>
            </p>
        }
    });
    view! {
        <div class="detail-head">
            <h1>{i.name.clone()}</h1>
            {live_status(&i.id, i.status, op)}
        </div>
        {i.status_reason.clone().map(|why| view! { <p class="status-reason">{why}</p> })}
        {i.status_note.clone().map(|note| view! { <p class="status-note">{note}</p> })}
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
            <Actions
                id=i.id.clone()
                name=i.name.clone()
                actions=i.actions.clone()
                op
                detail=i.clone()
                open
            />
            {audit}
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
