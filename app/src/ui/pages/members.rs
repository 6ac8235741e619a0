use super::mark_page_hydrated;
use crate::api::{
    get_invitation, list_members, AcceptInvitation, ChangeMemberRole, InviteMember, RemoveMember,
    RevokeInvitation,
};
use crate::domain::members::MIN_PASSWORD_CHARS;
use crate::domain::{EmailDelivery, Members, Role};
use crate::ui::components::{island_hydrated, set_http_status, ErrorBox, Shell};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

/// Who belongs to the tenant, read on the server; the forms that change it are a lazy island
/// (few people open this page, so its code is a chunk of its own).
#[component]
pub fn MembersPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| list_members());
    view! {
        <Title text="Members · Portico"/>
        <Shell>
            <Suspense fallback=|| view! { <p class="loading">"Loading members…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => {
                            set_http_status(e.status());
                            view! { <ErrorBox error=e/> }.into_any()
                        }
                        Ok(initial) => view! { <MemberAdmin initial/> }.into_any(),
                    }
                })}
            </Suspense>
        </Shell>
    }
}

fn role_options(selected: Role) -> impl IntoView {
    Role::ALL
        .into_iter()
        .map(|r| view! { <option value=r.as_str() selected=r == selected>{r.as_str()}</option> })
        .collect_view()
}

/// Who belongs to the tenant, pending invitations, and the forms that change them. The server
/// decides everything again; a refusal (the last admin, say) shows in the alert. After each
/// change the lists are read again.
#[island(lazy)]
fn MemberAdmin(initial: Members) -> impl IntoView {
    island_hydrated();
    mark_page_hydrated("members");
    let invite = ServerAction::<InviteMember>::new();
    let change = ServerAction::<ChangeMemberRole>::new();
    let remove = ServerAction::<RemoveMember>::new();
    let revoke = ServerAction::<RevokeInvitation>::new();
    let data = RwSignal::new(initial);
    Effect::new(move |seen: Option<[usize; 4]>| {
        let now = [
            invite.version().get(),
            change.version().get(),
            remove.version().get(),
            revoke.version().get(),
        ];
        if seen.is_some_and(|s| s != now) {
            leptos::task::spawn_local(async move {
                if let Ok(m) = list_members().await {
                    data.set(m);
                }
            });
        }
        now
    });
    let error = move || {
        let e = |r: Option<Result<(), crate::api::AppError>>| r.and_then(Result::err);
        invite
            .value()
            .get()
            .and_then(Result::err)
            .or_else(|| e(change.value().get()))
            .or_else(|| e(remove.value().get()))
            .or_else(|| e(revoke.value().get()))
            .map(|e| e.to_string())
    };
    let created = move || invite.value().get().and_then(Result::ok);
    let link = move || {
        created().map(|i| {
            let origin = window().location().origin().unwrap_or_default();
            format!("{origin}{}", i.path)
        })
    };
    let delivery = move || {
        match created().map(|i| i.email) {
            Some(EmailDelivery::Sent) => "We emailed the invitation. You can also send this link yourself; it works once, for 7 days: ",
            Some(EmailDelivery::Failed) => "The invitation email could not be sent. Send this link yourself; it works once, for 7 days: ",
            _ => "Send this link to them; it works once, for 7 days: ",
        }
    };
    view! {
        <h1>"Members"</h1>
        <Show when=move || error().is_some()>
            <div class="error-box" role="alert">{error}</div>
        </Show>
        <section aria-labelledby="invite-heading" class="panel">
            <h2 id="invite-heading">"Invite someone"</h2>
            <ActionForm action=invite attr:class="filters">
                <label>
                    <span>"Email"</span>
                    <input type="email" name="email" required autocomplete="off"/>
                </label>
                <label>
                    <span>"Role"</span>
                    <select name="role">{role_options(Role::Viewer)}</select>
                </label>
                <button type="submit" class="primary">"Create invitation link"</button>
            </ActionForm>
            <Show when=move || link().is_some()>
                <p role="status">
                    {delivery}
                    <input class="invite-link" readonly aria-label="Invitation link" prop:value=link/>
                </p>
            </Show>
        </section>
        {move || {
            let m = data.get();
            view! {
                        <h2>"People"</h2>
                        <ul class="member-list" aria-label="Members">
                            {m.members.into_iter().map(|p| {
                                let who = if p.is_you { format!("{} (you)", p.email) } else { p.email.clone() };
                                let role_label = format!("Role of {}", p.email);
                                let remove_label = format!("Remove {}", p.email);
                                let (id, role) = (p.user_id, p.role);
                                let id2 = id.clone();
                                view! {
                                    <li>
                                        <span><strong>{p.display_name}</strong> " " {who}</span>
                                        <ActionForm action=change attr:class="inline">
                                            <input type="hidden" name="user_id" value=id.clone()/>
                                            <select name="role" aria-label=role_label.clone()>
                                                {role_options(role)}
                                            </select>
                                            <button type="submit">"Save role"</button>
                                        </ActionForm>
                                        <details>
                                            <summary>"Remove…"</summary>
                                            <ActionForm action=remove attr:class="inline">
                                                <input type="hidden" name="user_id" value=id2.clone()/>
                                                <span class="hint">"They lose access at once."</span>
                                                <button type="submit" class="danger">{remove_label.clone()}</button>
                                            </ActionForm>
                                        </details>
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                        <h2>"Pending invitations"</h2>
                        {if m.invitations.is_empty() {
                            view! { <p class="empty">"None."</p> }.into_any()
                        } else {
                            view! {
                                <ul class="member-list" aria-label="Pending invitations">
                                    {m.invitations.into_iter().map(|i| {
                                        let what = format!("{} as {}, invited by {}", i.email, i.role.as_str(), i.invited_by);
                                        let label = format!("Revoke invitation for {}", i.email);
                                        let id = i.id;
                                        view! {
                                            <li>
                                                <span>{what}</span>
                                                <ActionForm action=revoke attr:class="inline">
                                                    <input type="hidden" name="invitation_id" value=id.clone()/>
                                                    <button type="submit">{label.clone()}</button>
                                                </ActionForm>
                                            </li>
                                        }
                                    }).collect_view()}
                                </ul>
                            }.into_any()
                        }}
            }
        }}
    }
}

/// Where an invitation link leads: what it offers, then a password (the account's own, or a
/// new one with a name).
#[component]
pub fn InvitePage() -> impl IntoView {
    let params = use_params_map();
    let token = move || params.read().get("token").unwrap_or_default();
    let info = Resource::new(token, get_invitation);
    view! {
        <Title text="Invitation · Portico"/>
        <main id="main" class="sign-in">
            <div class="card">
                <img src="/logo.svg" alt="" width="40" height="40"/>
                <Suspense fallback=|| view! { <p class="loading">"Loading the invitation…"</p> }>
                    {move || Suspend::new(async move {
                        match info.await {
                            Err(_) => {
                                set_http_status(404);
                                view! {
                                    <h1>"Invitation not found"</h1>
                                    <p>"This link has been used, withdrawn or has expired. Ask the person who invited you for a new one."</p>
                                }.into_any()
                            }
                            Ok(i) => view! {
                                <h1>{format!("Join {}", i.tenant_name)}</h1>
                                <p>{format!("You are invited as {} with the email {}.", i.role.as_str(), i.email)}</p>
                                <AcceptForm token=token()/>
                            }.into_any(),
                        }
                    })}
                </Suspense>
            </div>
        </main>
    }
}

/// The form that accepts an invitation: a lazy island, like the members page's forms.
#[island(lazy)]
fn AcceptForm(token: String) -> impl IntoView {
    island_hydrated();
    mark_page_hydrated("invite");
    let accept = ServerAction::<AcceptInvitation>::new();
    let error = move || {
        accept
            .value()
            .get()
            .and_then(Result::err)
            .map(|e| e.to_string())
    };
    view! {
        <ActionForm action=accept>
            <input type="hidden" name="token" value=token/>
            <label for="display_name">"Your name"</label>
            <input id="display_name" name="display_name" type="text" autocomplete="name"/>
            <label for="password">"Password"</label>
            <input id="password" name="password" type="password" autocomplete="new-password" required
                aria-describedby="password-hint"/>
            <p id="password-hint" class="hint">{format!(
                "New to this portal? Choose a password of at least {MIN_PASSWORD_CHARS} characters. Already have an account with this email? Enter its password; your name stays as it is."
            )}</p>
            <Show when=move || error().is_some()>
                <p class="form-error" role="alert">{error}</p>
            </Show>
            <button type="submit" class="primary" disabled=move || accept.pending().get()>
                "Accept and sign in"
            </button>
        </ActionForm>
    }
}
