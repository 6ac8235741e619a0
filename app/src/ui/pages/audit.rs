use crate::api::{audit_log, instance_names};
use crate::domain::{percent_encode, AuditOutcome, Operation};
use crate::ui::components::pager::Pager;
use crate::ui::components::{set_http_status, ErrorBox, Shell};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

const FILTERS: [&str; 4] = ["instance_id", "operation", "user", "outcome"];

/// The audit log. Nothing on it runs in the browser: its filters are a plain GET form and its
/// pages and exports are links.
#[component]
pub fn AuditPage() -> impl IntoView {
    view! {
        <Title text="Audit log · Portico"/>
        <Shell>
            <Audit/>
        </Shell>
    }
}

/// The tenant's audit log, newest first, filtered by a plain GET form so every filter is a
/// link; the export links carry the same filters.
#[component]
fn Audit() -> impl IntoView {
    let query = use_query_map();
    let get = move |k: &str| query.read().get(k).unwrap_or_default();
    let data = Resource::new(
        move || (FILTERS.map(get), get("after"), get("before")),
        |([i, o, u, r], after, before)| audit_log(i, o, u, r, after, before),
    );
    let instances = Resource::new(|| (), |_| instance_names());
    let export = move |format: &str| {
        let mut href = format!("/audit/export?format={format}");
        for k in FILTERS {
            let v = get(k);
            if !v.is_empty() {
                href += &format!("&{k}={}", percent_encode(&v));
            }
        }
        href
    };
    let select = move |name: &'static str, any: &'static str, options: Vec<(String, String)>| {
        let selected = get(name);
        view! {
            <select name=name id=format!("audit-{name}")>
                <option value="">{any}</option>
                {options
                    .into_iter()
                    .map(|(v, l)| {
                        let sel = v == selected;
                        view! { <option value=v selected=sel>{l}</option> }
                    })
                    .collect_view()}
            </select>
        }
    };
    view! {
        <h1>"Audit log"</h1>
        <p class="hint">"Every request, allowed or refused, and how each operation ended. Nobody can change it."</p>
        <form method="get" action="/audit" class="filters">
            <label>
                <span>"Instance"</span>
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        let list = instances.await.unwrap_or_default();
                        select("instance_id", "All instances", list)
                    })}
                </Suspense>
            </label>
            <label>
                <span>"Operation"</span>
                {select(
                    "operation",
                    "All operations",
                    Operation::ALL
                        .iter()
                        .map(|o| o.as_str())
                        .chain(crate::domain::members::AUDIT_EVENTS)
                        .map(|o| (o.to_owned(), o.to_owned()))
                        .collect(),
                )}
            </label>
            <label>
                <span>"User"</span>
                <input type="search" name="user" placeholder="Email" prop:value=move || get("user")/>
            </label>
            <label>
                <span>"Outcome"</span>
                {select("outcome", "Any outcome", AuditOutcome::ALL.iter().map(|o| (o.to_string(), o.to_string())).collect())}
            </label>
            <button type="submit">"Apply"</button>
        </form>
        <p class="exports">
            "Export every entry matching these filters: "
            <a href=move || export("csv") download>"CSV"</a>
            " · "
            <a href=move || export("json") download>"JSON"</a>
        </p>
        // Put in place again as lines are added (ui/live.js).
        <div id="audit-results" data-live="audit.appended">
        <Suspense fallback=|| view! { <p class="loading">"Loading the audit log…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => {
                        set_http_status(e.status());
                        view! { <ErrorBox error=e/> }.into_any()
                    }
                    Ok(page) if page.items.is_empty() => view! { <p class="empty">"No entries match these filters."</p> }.into_any(),
                    Ok(page) => view! {
                        <div class="table-scroll" tabindex="0" role="region" aria-label="Audit entries">
                            <table class="config audit">
                                <thead>
                                    <tr>
                                        {["Time", "User", "Instance", "Operation", "Outcome", "Reason", "Parameters", "Request id"]
                                            .map(|h| view! { <th scope="col">{h}</th> })}
                                    </tr>
                                </thead>
                                <tbody>
                                    {page
                                        .items
                                        .into_iter()
                                        .map(|e| {
                                            // One cell type for every column keeps the bundle small.
                                            let cells = [
                                                e.time,
                                                format!("{} ({})", e.actor, e.role),
                                                e.instance,
                                                e.operation,
                                                e.outcome,
                                                e.reason,
                                                e.parameters,
                                                e.request_id,
                                            ];
                                            view! { <tr>{cells.map(|c| view! { <td>{c}</td> })}</tr> }
                                        })
                                        .collect_view()}
                                </tbody>
                            </table>
                        </div>
                        <Pager
                            label="Pages of the audit log"
                            path="/audit"
                            filters=FILTERS.map(|k| (k, get(k))).to_vec()
                            previous=page.previous
                            next=page.next
                            previous_text="Newer entries"
                            next_text="Older entries"
                        />
                    }
                    .into_any(),
                }
            })}
        </Suspense>
        </div>
    }
}
