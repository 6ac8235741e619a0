use crate::api::{create_instance, get_create_options, AppError};
use crate::domain::policy::CreateRequest;
use crate::domain::{CreateOptions, Resources};
use crate::ui::components::form::{
    field, parameter_control, parameter_value, read_resources, resource_fields, resource_signals,
    Control,
};
use crate::ui::components::operation::new_key;
use crate::ui::components::{island_hydrated, set_http_status, ErrorBox, Shell};
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;
use leptos_router::components::A;
use std::collections::BTreeMap;

use super::mark_page_hydrated;

/// New instance. Its form is a lazy island: a page opened now and then, so its code is a
/// chunk of its own, fetched when the page opens (and out of what every visitor downloads).
#[component]
pub fn CreatePage() -> impl IntoView {
    let options = Resource::new(|| (), |_| get_create_options());
    view! {
        <Title text="New instance · Portico"/>
        <Shell>
            <p class="back">
                <A href="/instances">"← All instances"</A>
            </p>
            <h1>"New instance"</h1>
            <Suspense fallback=|| view! { <p class="loading">"Loading your plan…"</p> }>
                {move || Suspend::new(async move {
                    match options.await {
                        Ok(o) => match o.denied.clone() {
                            Some(reason) => {
                                set_http_status(403);
                                view! { <ErrorBox error=AppError::Denied { reason, field: None }/> }.into_any()
                            }
                            None => view! { <CreateForm o/> }.into_any(),
                        },
                        Err(e) => {
                            set_http_status(e.status());
                            view! { <ErrorBox error=e/> }.into_any()
                        }
                    }
                })}
            </Suspense>
        </Shell>
    }
}

/// Offers only the plan's environments, regions, limits and editable parameters; the server
/// checks everything again.
#[island(lazy)]
fn CreateForm(o: CreateOptions) -> impl IntoView {
    island_hydrated();
    mark_page_hydrated("create");
    let error = RwSignal::new(None::<AppError>);
    let pending = RwSignal::new(false);
    let first =
        |v: &[(String, String)]| RwSignal::new(v.first().map(|p| p.0.clone()).unwrap_or_default());
    let (name, environment, region) = (
        RwSignal::new(String::new()),
        first(&o.environments),
        first(&o.regions),
    );
    let b = &o.bounds;
    let resources = resource_signals(Resources {
        replicas: b.replicas.default,
        cpu_millicores: b.cpu_millicores.default,
        memory_mib: b.memory_mib.default,
        storage_gib: b.storage_gib.default,
    });
    let params: Vec<_> = o
        .parameters
        .iter()
        .map(|spec| (spec.clone(), RwSignal::new(spec.default.clone())))
        .collect();
    let params = StoredValue::new(params);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let read = || -> Result<CreateRequest, AppError> {
            let mut parameters = BTreeMap::new();
            for (spec, value) in params.get_value() {
                // A secret left blank keeps the plan's default.
                if spec.secret && value.get_untracked().trim().is_empty() {
                    continue;
                }
                parameters.insert(
                    spec.name.clone(),
                    parameter_value(&spec, &value.get_untracked())?,
                );
            }
            Ok(CreateRequest {
                name: name.get_untracked().trim().to_owned(),
                environment: environment.get_untracked(),
                region: region.get_untracked(),
                resources: read_resources(resources)?,
                parameters,
            })
        };
        let request = match read() {
            Ok(r) => r,
            Err(e) => return error.set(Some(e)),
        };
        error.set(None);
        pending.set(true);
        spawn_local(async move {
            match create_instance(request, new_key()).await {
                Ok(op) => {
                    let _ = window()
                        .location()
                        .set_href(&format!("/instances/{}", op.instance_id));
                }
                Err(e) => error.set(Some(e)),
            }
            pending.set(false);
        });
    };
    view! {
        <p class="hint">{format!("On your {} plan.", o.plan_name)}</p>
        <form class="create" on:submit=submit>
            {field(
                "new",
                "Name".into(),
                "name".into(),
                Some("Lowercase letters, digits and hyphens; up to 64 characters.".into()),
                Control::Text,
                name,
                error,
            )}
            <div class="form-grid">
                {field("new", "Environment".into(), "environment".into(), None, Control::Select(o.environments.clone()), environment, error)}
                {field("new", "Region".into(), "region".into(), None, Control::Select(o.regions.clone()), region, error)}
                {resource_fields("new", &o.bounds, None, resources, error)}
                {params
                    .get_value()
                    .into_iter()
                    .map(|(spec, value)| {
                        let (control, hint) = parameter_control(&spec);
                        field("new", spec.label, spec.name, hint, control, value, error)
                    })
                    .collect_view()}
            </div>
            {move || error.get().filter(|e| e.field().is_none()).map(|error| view! { <ErrorBox error/> })}
            <div class="buttons">
                <button type="submit" class="primary" disabled=pending>
                    "Create instance"
                </button>
            </div>
        </form>
    }
}
