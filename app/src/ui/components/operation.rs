//! Following an in-flight operation: idempotency keys, moving focus as panels open and close,
//! polling the operation to its end, and showing its progress.

use super::StatusBadge;
use crate::api::get_operation_status;
use crate::domain::{OperationStatus, Status};
use leptos::prelude::*;
use leptos::task::spawn_local;
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
