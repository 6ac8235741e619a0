//! Following an in-flight operation: idempotency keys, moving focus as panels open and close,
//! following the operation to its end (live events, or polling without them), and showing its
//! progress.

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

/// How often an operation is polled while the page has no live stream (`ui/live.js`).
const POLL: Duration = Duration::from_secs(2);

/// Follows `op` until it ends, then bumps `version` so the page reloads what it shows. While the
/// page is live, the stream's events reload the instance (see [`reload_on_events`]) and nothing
/// is polled; while it is not, the operation is polled every [`POLL`]. Effects run only in the
/// browser, so the server never polls. A poll that answers after the page was left finds its
/// signals disposed and changes nothing (signal writes never panic there).
pub fn follow(op: RwSignal<Option<OperationStatus>>, version: RwSignal<u32>) {
    let refresh = move || version.update(|v| *v += 1);
    let tick = RwSignal::new(0u32);
    Effect::new(move |_| {
        tick.track();
        let Some(current) = op.get() else { return };
        if current.finished() {
            refresh();
            return;
        }
        set_timeout(
            move || {
                if page_is_live() {
                    tick.try_update(|t| *t += 1);
                    return;
                }
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
            POLL,
        );
    });
}

/// Whether the page's event stream is up (`ui/live.js` sets `__porticoLive`).
fn page_is_live() -> bool {
    #[cfg(feature = "hydrate")]
    {
        use leptos::wasm_bindgen::JsValue;
        leptos::web_sys::js_sys::Reflect::get(&window(), &JsValue::from_str("__porticoLive"))
            .is_ok_and(|v| v.is_truthy())
    }
    #[cfg(not(feature = "hydrate"))]
    false
}

/// Bumps `version` when the page's event stream says `instance_id` changed: `ui/live.js` sends
/// `portico:instance:<id>` once per burst of events that change what an instance shows.
pub fn reload_on_events(instance_id: String, version: RwSignal<u32>) {
    #[cfg(feature = "hydrate")]
    {
        let handle =
            window_event_listener_untyped(&format!("portico:instance:{instance_id}"), move |_| {
                version.try_update(|v| *v += 1);
            });
        on_cleanup(move || handle.remove());
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (instance_id, version);
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
