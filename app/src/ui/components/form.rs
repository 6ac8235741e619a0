//! Form fields bounded by the plan: labelled controls with the server's message beside them,
//! the resource fields, and plan parameters read back as their typed values.

use crate::api::AppError;
use crate::domain::{Bounds, FormParam, ParamType, ParamValue, Resources};
use leptos::prelude::*;

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
