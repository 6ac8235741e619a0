//! Running lifecycle operations from the pages: every action as a button with the policy's
//! answer, and the confirmation or form (scale, configuration) each one opens.

use super::form::{
    field, parameter_control, parameter_value, read_resources, resource_fields, resource_signals,
    Control,
};
use super::operation::{focus_id, new_key};
use super::ErrorBox;
use crate::api::{request_operation, AppError};
use crate::domain::policy::Request;
use crate::domain::{ActionState, FormParam, InstanceDetail, Operation, OperationStatus};
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::collections::BTreeMap;

/// What an action panel needs to know about its instance.
#[derive(Clone)]
struct Target {
    id: String,
    name: String,
    op: RwSignal<Option<OperationStatus>>,
    open: RwSignal<Option<Operation>>,
    pending: RwSignal<bool>,
    error: RwSignal<Option<AppError>>,
}

impl Target {
    fn busy(&self) -> bool {
        self.pending.get() || self.op.with(|o| o.as_ref().is_some_and(|o| !o.finished()))
    }

    /// Closes the open panel and gives focus back to the action that opened it.
    fn close(&self) {
        if let Some(op) = self.open.get_untracked() {
            focus_id(format!("{}-{}", self.id, op.as_str()));
        }
        self.open.set(None);
        self.error.set(None);
    }

    /// Sends the request with a new idempotency key; on success closes the panel and follows
    /// the operation, on refusal shows why (next to the field it concerns, if any).
    fn send(&self, request: Request) {
        let t = self.clone();
        t.pending.set(true);
        t.error.set(None);
        spawn_local(async move {
            match request_operation(t.id.clone(), request, new_key()).await {
                Ok(status) => {
                    t.open.set(None);
                    t.op.set(Some(status));
                    focus_id(format!("{}-progress", t.id));
                }
                Err(e) => t.error.set(Some(e)),
            }
            t.pending.set(false);
        });
    }

    fn general_error(&self) -> impl IntoView {
        let error = self.error;
        move || {
            error
                .get()
                .filter(|e| e.field().is_none())
                .map(|error| view! { <ErrorBox error/> })
        }
    }
}

/// Each lifecycle action for one instance. On the instance page (`detail` given) every action
/// is listed with the policy's reason and opens its confirmation or form; in the list, the
/// available actions are buttons (scale, configuration and delete lead to the instance page)
/// and the unavailable ones are explained behind a disclosure.
#[component]
pub fn Actions(
    id: String,
    name: String,
    actions: Vec<ActionState>,
    op: RwSignal<Option<OperationStatus>>,
    #[prop(optional)] detail: Option<InstanceDetail>,
    #[prop(optional_no_strip)] open: Option<Operation>,
) -> impl IntoView {
    let t = Target {
        id,
        name,
        op,
        open: RwSignal::new(open),
        pending: RwSignal::new(false),
        error: RwSignal::new(None),
    };
    let full = detail.is_some();
    let detail = StoredValue::new(detail);
    let button = {
        let t = t.clone();
        move |a: &ActionState| {
            let (t, op, allowed) = (t.clone(), a.operation, a.allowed());
            let click = {
                let t = t.clone();
                move |_| {
                    if op == Operation::Start {
                        t.send(Request::Start);
                    } else {
                        t.error.set(None);
                        t.open.set(Some(op));
                        focus_id(format!("{}-panel", t.id));
                    }
                }
            };
            let disabled = {
                let t = t.clone();
                move || !allowed || t.busy()
            };
            let needs_page = !full
                && matches!(
                    op,
                    Operation::Scale | Operation::UpdateConfig | Operation::Delete
                );
            if needs_page {
                let href = format!("/instances/{}?action={}", t.id, op.as_str());
                view! { <a href=href class="button">{format!("{}…", a.label())}</a> }.into_any()
            } else {
                view! {
                    <button
                        type="button"
                        class="action-button"
                        id=format!("{}-{}", t.id, op.as_str())
                        disabled=disabled
                        on:click=click
                    >
                        {a.label()}
                    </button>
                }
                .into_any()
            }
        }
    };
    let list = if full {
        view! {
            <ul class="actions" aria-label="Actions">
                {actions
                    .iter()
                    .map(|a| {
                        let state = if a.allowed() { "allowed" } else { "denied" };
                        view! {
                            <li class=format!("action {state}")>
                                {button(a)}
                                <span class="action-why">
                                    {a.reason.clone().unwrap_or_else(|| "Available".into())}
                                </span>
                            </li>
                        }
                    })
                    .collect_view()}
            </ul>
        }
        .into_any()
    } else {
        let (allowed, denied): (Vec<_>, Vec<_>) = actions.iter().partition(|a| a.allowed());
        let names: Vec<_> = denied.iter().map(|a| a.label()).collect();
        view! {
            <div class="card-actions">{allowed.into_iter().map(&button).collect_view()}</div>
            {(!denied.is_empty())
                .then(|| {
                    view! {
                        <details class="why-not">
                            <summary>{format!("Not available: {}", names.join(", "))}</summary>
                            <ul>
                                {denied
                                    .iter()
                                    .map(|a| {
                                        view! {
                                            <li>
                                                <strong>{a.label()}</strong>
                                                ": "
                                                {a.reason.clone()}
                                            </li>
                                        }
                                    })
                                    .collect_view()}
                            </ul>
                        </details>
                    }
                })}
        }
        .into_any()
    };
    view! {
        {list}
        {move || t.open.get().map(|op| panel(&t, op, detail.get_value()))}
    }
}

fn panel(t: &Target, op: Operation, detail: Option<InstanceDetail>) -> impl IntoView {
    let cancel = {
        let t = t.clone();
        view! {
            <button type="button" on:click=move |_| t.close()>
                "Cancel"
            </button>
        }
    };
    let name = t.name.clone();
    let pending = t.pending;
    let body = match (op, detail) {
        (Operation::Stop | Operation::Restart, _) => {
            let (question, request) = if op == Operation::Stop {
                (
                    format!("Stop {name}? It stops serving until someone starts it again."),
                    Request::Stop,
                )
            } else {
                (
                    format!("Restart {name}? It is briefly unavailable while it restarts."),
                    Request::Restart,
                )
            };
            let label = format!("{} {name}", ActionState::name(op));
            let send = {
                let t = t.clone();
                move |_| t.send(request.clone())
            };
            view! {
                <p>{question}</p>
                {t.general_error()}
                <div class="buttons">
                    <button type="button" class="primary" disabled=pending on:click=send>
                        {label}
                    </button>
                    {cancel}
                </div>
            }
            .into_any()
        }
        (Operation::Delete, _) => {
            let typed = RwSignal::new(String::new());
            let submit = {
                let t = t.clone();
                move |ev: leptos::ev::SubmitEvent| {
                    ev.prevent_default();
                    t.send(Request::Delete {
                        confirm_name: typed.get_untracked().trim().to_owned(),
                    });
                }
            };
            view! {
                <form on:submit=submit>
                    <p>{format!("Deleting {name} removes it and its data. This cannot be undone.")}</p>
                    {field(
                        &t.id,
                        format!("Type {name} to confirm"),
                        "confirm_name".into(),
                        None,
                        Control::Text,
                        typed,
                        t.error,
                    )}
                    {t.general_error()}
                    <div class="buttons">
                        <button type="submit" class="danger" disabled=pending>
                            {format!("Delete {name}")}
                        </button>
                        {cancel}
                    </div>
                </form>
            }
            .into_any()
        }
        (Operation::Scale, Some(d)) => scale_form(t, &d, cancel).into_any(),
        (Operation::UpdateConfig, Some(d)) => config_form(t, &d, cancel).into_any(),
        _ => ().into_any(),
    };
    view! {
        <section
            class="panel"
            id=format!("{}-panel", t.id)
            aria-label=format!("{} {name}", ActionState::name(op))
            on:keydown={
                let t = t.clone();
                move |ev| {
                    if ev.key() == "Escape" {
                        t.close();
                    }
                }
            }
        >
            <h3>{format!("{} {name}", ActionState::name(op))}</h3>
            {body}
        </section>
    }
}

fn scale_form(t: &Target, d: &InstanceDetail, cancel: impl IntoView) -> impl IntoView {
    let values = resource_signals(d.resources);
    let submit = {
        let t = t.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            match read_resources(values) {
                Ok(resources) => t.send(Request::Scale { resources }),
                Err(e) => t.error.set(Some(e)),
            }
        }
    };
    view! {
        <form on:submit=submit>
            <p class="hint">"Limits come from your plan."</p>
            <div class="form-grid">
                {resource_fields(&t.id, &d.bounds, Some(d.resources), values, t.error)}
            </div>
            {t.general_error()}
            <div class="buttons">
                <button type="submit" class="primary" disabled=t.pending>
                    "Scale"
                </button>
                {cancel}
            </div>
        </form>
    }
}

fn config_form(t: &Target, d: &InstanceDetail, cancel: impl IntoView) -> impl IntoView {
    // Current values as shown (secrets are masked, so their fields start empty).
    let fields: Vec<(FormParam, String, RwSignal<String>)> = d
        .editable
        .iter()
        .map(|spec| {
            let current = if spec.secret {
                String::new()
            } else {
                d.parameters
                    .iter()
                    .find(|p| p.name == spec.name)
                    .map_or_else(|| spec.default.clone(), |p| p.value.clone())
            };
            (spec.clone(), current.clone(), RwSignal::new(current))
        })
        .collect();
    let fields = StoredValue::new(fields);
    let submit = {
        let t = t.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            let mut changes = BTreeMap::new();
            for (spec, before, value) in fields.get_value() {
                let now = value.get_untracked();
                if now.trim() == before || (spec.secret && now.trim().is_empty()) {
                    continue;
                }
                match parameter_value(&spec, &now) {
                    Ok(v) => {
                        changes.insert(spec.name.clone(), v);
                    }
                    Err(e) => return t.error.set(Some(e)),
                }
            }
            if changes.is_empty() {
                return t.error.set(Some(AppError::Denied {
                    reason: "Nothing changed: edit a value first.".into(),
                    field: None,
                }));
            }
            t.send(Request::UpdateConfig { changes });
        }
    };
    let scope = t.id.clone();
    view! {
        <form on:submit=submit>
            <div class="form-grid">
                {fields
                    .get_value()
                    .into_iter()
                    .map(|(spec, _, value)| {
                        let (control, hint) = parameter_control(&spec);
                        field(&scope, spec.label, spec.name, hint, control, value, t.error)
                    })
                    .collect_view()}
            </div>
            {t.general_error()}
            <div class="buttons">
                <button type="submit" class="primary" disabled=t.pending>
                    "Save configuration"
                </button>
                {cancel}
            </div>
        </form>
    }
}
