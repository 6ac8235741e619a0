//! Signing in and out, and who is signed in.

use super::{client, AppError, JsonText};
use crate::domain::{Me, SsoButton};
use leptos::prelude::*;
#[cfg(feature = "ssr")]
use {
    super::context::{client_addr, principal, respond, session_token, set_cookie, state},
    crate::server::{auth, service::session},
};

/// Signs in with email and password; on success sets the session cookie and goes to the list.
#[server(endpoint = "sign_in", output = JsonText, client = client::SessionClient)]
pub async fn sign_in(email: String, password: String) -> Result<(), AppError> {
    respond(
        async {
            let state = state()?;
            let addr = client_addr(&state)?;
            let (token, _) = session::sign_in(&state, addr, &email, password).await?;
            set_cookie(&auth::session_cookie(&state, &token));
            leptos_axum::redirect("/instances");
            Ok(())
        }
        .await,
    )
}

/// The single sign-on buttons the sign-in page offers beside the password form.
#[server(endpoint = "sign_in_options", output = JsonText, client = client::SessionClient)]
pub async fn sign_in_options() -> Result<Vec<SsoButton>, AppError> {
    respond(state().map(|state| session::sign_in_options(&state)))
}

/// Ends the session on the server and clears the cookie.
#[server(endpoint = "sign_out", output = JsonText, client = client::SessionClient)]
pub async fn sign_out() -> Result<(), AppError> {
    respond(
        async {
            let state = state()?;
            if let Some(token) = session_token() {
                session::sign_out(&state, &token).await?;
            }
            set_cookie(&auth::clear_cookie(&state));
            leptos_axum::redirect("/sign-in");
            Ok(())
        }
        .await,
    )
}

/// The signed-in user and their tenant.
#[server(endpoint = "current_user", output = JsonText, client = client::SessionClient)]
pub async fn current_user() -> Result<Me, AppError> {
    respond(
        async {
            let (state, who) = principal().await?;
            Ok(session::me(&state, &who).await?)
        }
        .await,
    )
}
