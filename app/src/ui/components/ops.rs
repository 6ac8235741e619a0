//! Running lifecycle operations from the pages: every action as a button with the policy's
//! answer, confirmations, forms bounded by the plan, and following an operation to its end.

use super::{ErrorBox, StatusBadge};
use crate::api::{get_operation_status, request_operation, AppError};
use crate::domain::policy::Request;
use crate::domain::{
    ActionState, Bounds, FormParam, InstanceDetail, Operation, OperationStatus, ParamType,
    ParamValue, Resources, Status,
};
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::components::A;
use std::collections::BTreeMap;
use std::time::Duration;

/// A fresh idempotency key: the UI sends one per user action, so a double submission of the
/// same action is answered once.
pub fn new_key() -> String {
    #[cfg(feature = "hydrate")]
    {
        use leptos::web_sys::js_sys::{Date, Math};
        let r = || (Math::random() * 9_007_199_254_740_992.0) as u64;
        format!("{:x}-{:x}-{:x}", Date::now() as u64, r(), r())
    }
    #[cfg(not(feature = "hydrate"))]
    String::new()
}

/// Once the element with this id is on the page, moves keyboard focus to its first control,
/// or to the element itself when it has none.
pub fn focus_id(id: String) {
    #[cfg(feature = "hydrate")]
    request_animation_frame(move || {
        use leptos::wasm_bindgen::JsCast;
        if let Some(el) = document().get_element_by_id(&id) {
            let target = el
                .query_selector("input, select, button")
                .ok()
                .flatten()
                .unwrap_or(el);
            let _ = target
                .unchecked_into::<leptos::web_sys::HtmlElement>()
                .focus();
        }
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = id;
}

/// Polls `op` until it ends, then bumps `version` so the page reloads what it shows. Effects
/// run only in the browser, so the server never polls. A poll that answers after the page was
/// left finds its signals disposed and changes nothing (signal writes never panic there).
pub fn follow(op: RwSignal<Option<OperationStatus>>, version: RwSignal<u32>) {
    let refresh = move || version.update(|v| *v += 1);
    Effect::new(move |_| {
        let Some(current) = op.get() else { return };
        if current.finished() {
            refresh();
            return;
        }
        set_timeout(
            move || {
                spawn_local(async move {
                    match get_operation_status(current.operation_id).await {
                        Ok(next) => {
                            op.try_set(Some(next));
                        }
                        // Signed out or gone: the reloaded page says what happened.
                        Err(_) => refresh(),
                    }
                })
            },
            Duration::from_millis(700),
        );
    });
}

/// The instance's status as the operation moves it, and the operation's progress.
pub fn live_status(
    instance_id: &str,
    status: Status,
    op: RwSignal<Option<OperationStatus>>,
) -> impl IntoView {
    view! {
        {move || {
            let status = op.with(|o| o.as_ref().map_or(status, |o| o.instance_status));
            view! { <StatusBadge status/> }
        }}
        <span class="progress" id=format!("{instance_id}-progress") tabindex="-1" role="status">
            {move || op.with(|o| o.as_ref().map(OperationStatus::progress))}
        </span>
    }
}

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
                view! { <A href attr:class="button">{format!("{}…", a.label())}</A> }.into_any()
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

/// How a form field is entered.
pub enum Control {
    Text,
    Number(Bounds),
    /// (value, label) pairs.
    Select(Vec<(String, String)>),
}

/// A labelled control with its limits and the server's message about it; its id is
/// `<scope>-<name>`.
pub fn field(
    scope: &str,
    label: String,
    name: String,
    hint: Option<String>,
    control: Control,
    value: RwSignal<String>,
    error: RwSignal<Option<AppError>>,
) -> impl IntoView {
    let id = format!("{scope}-{name}");
    let hint_id = format!("{id}-hint");
    let error_id = format!("{id}-error");
    let message = {
        let name = name.clone();
        move || error.with(|e| e.as_ref().and_then(|e| e.message_for(&name)))
    };
    let invalid = {
        let message = message.clone();
        move || message().map(|_| "true")
    };
    let described = format!("{hint_id} {error_id}");
    let input = match control {
        Control::Text => view! {
            <input
                id=id.clone()
                name=name.clone()
                type="text"
                autocomplete="off"
                spellcheck="false"
                aria-describedby=described
                aria-invalid=invalid
                bind:value=value
            />
        }
        .into_any(),
        Control::Number(b) => view! {
            <input
                id=id.clone()
                name=name.clone()
                type="number"
                inputmode="numeric"
                required
                min=b.min
                max=b.max
                step="1"
                aria-describedby=described
                aria-invalid=invalid
                bind:value=value
            />
        }
        .into_any(),
        Control::Select(options) => view! {
            <select
                id=id.clone()
                name=name.clone()
                aria-describedby=described
                aria-invalid=invalid
                bind:value=value
            >
                {options
                    .into_iter()
                    .map(|(v, l)| {
                        let selected = value.get_untracked() == v;
                        view! { <option value=v selected=selected>{l}</option> }
                    })
                    .collect_view()}
            </select>
        }
        .into_any(),
    };
    view! {
        <div class="field">
            <label for=id>{label}</label>
            {input}
            {hint.map(|h| view! { <p class="hint" id=hint_id>{h}</p> })}
            {move || message().map(|m| view! { <p class="field-error" id=error_id.clone()>{m}</p> })}
        </div>
    }
}

/// The four resource fields, bounded by the plan. Storage may not shrink, so its lower limit
/// is the current size.
pub fn resource_fields(
    scope: &str,
    bounds: &crate::domain::ResourceBounds,
    current: Option<Resources>,
    values: [RwSignal<String>; 4],
    error: RwSignal<Option<AppError>>,
) -> impl IntoView {
    let mut storage = bounds.storage_gib;
    if let Some(c) = current {
        storage.min = storage.min.max(c.storage_gib);
    }
    let rows = [
        ("Replicas", "replicas", bounds.replicas, ""),
        ("CPU", "cpu_millicores", bounds.cpu_millicores, " mCPU"),
        ("Memory", "memory_mib", bounds.memory_mib, " MiB"),
        ("Storage", "storage_gib", storage, " GiB"),
    ];
    rows.into_iter()
        .zip(values)
        .map(|((label, name, b, unit), value)| {
            let mut hint = format!("{} to {}{unit}", b.min, b.max);
            if name == "storage_gib" && current.is_some() {
                hint += " (storage can only grow)";
            }
            field(
                scope,
                label.into(),
                name.into(),
                Some(hint),
                Control::Number(b),
                value,
                error,
            )
        })
        .collect_view()
}

/// Reads the four resource fields; an empty or non-numeric one is refused next to itself.
pub fn read_resources(values: [RwSignal<String>; 4]) -> Result<Resources, AppError> {
    let names = ["replicas", "cpu_millicores", "memory_mib", "storage_gib"];
    let mut out = [0u32; 4];
    for (i, v) in values.iter().enumerate() {
        out[i] = v
            .get_untracked()
            .trim()
            .parse()
            .map_err(|_| AppError::invalid(names[i], "must be a whole number"))?;
    }
    Ok(Resources {
        replicas: out[0],
        cpu_millicores: out[1],
        memory_mib: out[2],
        storage_gib: out[3],
    })
}

pub fn resource_signals(r: Resources) -> [RwSignal<String>; 4] {
    [r.replicas, r.cpu_millicores, r.memory_mib, r.storage_gib]
        .map(|v| RwSignal::new(v.to_string()))
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

/// A control for one plan parameter, holding its value as text.
pub fn parameter_control(spec: &FormParam) -> (Control, Option<String>) {
    let pairs = |v: &[&str]| v.iter().map(|s| (s.to_string(), s.to_string())).collect();
    match spec.kind {
        ParamType::Enum => (
            Control::Select(pairs(
                &spec.allowed.iter().map(String::as_str).collect::<Vec<_>>(),
            )),
            None,
        ),
        ParamType::Boolean => (
            Control::Select(vec![
                ("true".into(), "On".into()),
                ("false".into(), "Off".into()),
            ]),
            None,
        ),
        ParamType::Integer => {
            let b = Bounds {
                min: spec.min.unwrap_or(0).clamp(0, u32::MAX as i64) as u32,
                max: spec
                    .max
                    .unwrap_or(u32::MAX as i64)
                    .clamp(0, u32::MAX as i64) as u32,
                default: 0,
            };
            (Control::Number(b), Some(format!("{} to {}", b.min, b.max)))
        }
        ParamType::String if !spec.allowed.is_empty() => (
            Control::Select(pairs(
                &spec.allowed.iter().map(String::as_str).collect::<Vec<_>>(),
            )),
            None,
        ),
        ParamType::String => (
            Control::Text,
            spec.secret
                .then(|| "Secret: leave blank to keep the current value".into()),
        ),
    }
}

/// Reads a parameter's text back as its typed value.
pub fn parameter_value(spec: &FormParam, text: &str) -> Result<ParamValue, AppError> {
    let text = text.trim();
    match spec.kind {
        ParamType::Boolean => Ok(ParamValue::Bool(text == "true")),
        ParamType::Integer => text
            .parse()
            .map(ParamValue::Int)
            .map_err(|_| AppError::invalid(&spec.name, "must be a whole number")),
        ParamType::Enum | ParamType::String => Ok(ParamValue::Text(text.to_owned())),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: ParamType) -> FormParam {
        FormParam {
            name: "max_connections".into(),
            label: "Max connections".into(),
            kind,
            allowed: vec![],
            min: Some(10),
            max: Some(1000),
            default: "100".into(),
            secret: false,
        }
    }

    #[test]
    fn form_text_becomes_the_parameters_type() {
        let int = spec(ParamType::Integer);
        assert_eq!(parameter_value(&int, " 250 "), Ok(ParamValue::Int(250)));
        let bad = parameter_value(&int, "lots").unwrap_err();
        assert_eq!(
            bad.message_for("max_connections").as_deref(),
            Some("must be a whole number")
        );
        let flag = spec(ParamType::Boolean);
        assert_eq!(parameter_value(&flag, "true"), Ok(ParamValue::Bool(true)));
        assert_eq!(parameter_value(&flag, "false"), Ok(ParamValue::Bool(false)));
    }

    #[test]
    fn integer_parameters_offer_their_range() {
        let (control, hint) = parameter_control(&spec(ParamType::Integer));
        assert!(matches!(control, Control::Number(b) if b.min == 10 && b.max == 1000));
        assert_eq!(hint.as_deref(), Some("10 to 1000"));
    }

    #[test]
    fn an_empty_resource_field_is_refused_next_to_itself() {
        Owner::new_root(None).with(empty_resource_field_is_refused);
    }

    fn empty_resource_field_is_refused() {
        let values = resource_signals(Resources {
            replicas: 2,
            cpu_millicores: 1000,
            memory_mib: 1024,
            storage_gib: 20,
        });
        assert_eq!(read_resources(values).unwrap().replicas, 2);
        values[2].set(String::new());
        let e = read_resources(values).unwrap_err();
        assert_eq!(e.field(), Some("memory_mib"));
    }
}
