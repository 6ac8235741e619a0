//! Signing in and out, and who is signed in.

use super::{AppError, JsonText};
use crate::domain::{Me, SsoButton};
use leptos::prelude::*;
#[cfg(feature = "ssr")]
use {
    super::context::{
        client_addr, plain_form_post, principal, respond, see_other, session_token, set_cookie,
        state,
    },
    crate::server::{auth, service::session},
};

/// Signs in with email and password; on success sets the session cookie and goes to the list.
///
/// The sign-in form also works before (or without) the page's script: the browser then posts
/// it as a plain form and follows the redirect, to the list on success or back to the sign-in
/// page with the failure's code (`/sign-in?error=…`) otherwise.
#[server(endpoint = "sign_in", output = JsonText)]
pub async fn sign_in(email: String, password: String) -> Result<(), AppError> {
    let result = respond(
        async {
            let state = state()?;
            let addr = client_addr(&state)?;
            let (token, _) = session::sign_in(&state, addr, &email, password).await?;
            set_cookie(&auth::session_cookie(&state, &token));
            leptos_axum::redirect("/instances");
            Ok(())
        }
        .await,
    );
    if let Err(e) = &result {
        if plain_form_post() {
            see_other(&format!("/sign-in?error={}", SignInFailure::of(e).code()));
        }
    }
    result
}

/// Why a sign-in failed, as the redirect after a plain form post names it. A fixed set, so
/// that the address can never put text of its own on the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInFailure {
    Credentials,
    RateLimited,
    NoTenant,
    Busy,
    Other,
}

impl SignInFailure {
    const ALL: [SignInFailure; 5] = [
        SignInFailure::Credentials,
        SignInFailure::RateLimited,
        SignInFailure::NoTenant,
        SignInFailure::Busy,
        SignInFailure::Other,
    ];

    pub fn of(e: &AppError) -> Self {
        match e {
            AppError::BadCredentials => SignInFailure::Credentials,
            AppError::RateLimited { .. } => SignInFailure::RateLimited,
            AppError::NoTenant => SignInFailure::NoTenant,
            AppError::Busy => SignInFailure::Busy,
            _ => SignInFailure::Other,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            SignInFailure::Credentials => "credentials",
            SignInFailure::RateLimited => "rate_limited",
            SignInFailure::NoTenant => "no_tenant",
            SignInFailure::Busy => "busy",
            SignInFailure::Other => "failed",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.code() == code)
    }

    /// What the sign-in page says; the same words as the error the script would show, less
    /// what the code does not carry (the wait, the request id).
    pub fn message(self) -> String {
        match self {
            SignInFailure::Credentials => AppError::BadCredentials.to_string(),
            SignInFailure::RateLimited => {
                "Too many failed sign-ins. Try again in a few minutes.".into()
            }
            SignInFailure::NoTenant => AppError::NoTenant.to_string(),
            SignInFailure::Busy => AppError::Busy.to_string(),
            SignInFailure::Other => {
                "Something went wrong on our side. Try again; if it persists, tell your administrator.".into()
            }
        }
    }
}

/// The single sign-on buttons the sign-in page offers beside the password form.
#[server(endpoint = "sign_in_options", output = JsonText)]
pub async fn sign_in_options() -> Result<Vec<SsoButton>, AppError> {
    respond(state().map(|state| session::sign_in_options(&state)))
}

/// Ends the session on the server and clears the cookie.
#[server(endpoint = "sign_out", output = JsonText)]
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
#[server(endpoint = "current_user", output = JsonText)]
pub async fn current_user() -> Result<Me, AppError> {
    respond(
        async {
            let (state, who) = principal().await?;
            Ok(session::me(&state, &who).await?)
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::{AppError, SignInFailure};

    #[test]
    fn every_failure_code_reads_back_and_nothing_else_does() {
        for f in SignInFailure::ALL {
            assert_eq!(SignInFailure::from_code(f.code()), Some(f));
        }
        assert_eq!(SignInFailure::from_code("<script>"), None);
        assert_eq!(
            SignInFailure::of(&AppError::BadCredentials).message(),
            "Incorrect email or password."
        );
        assert_eq!(
            SignInFailure::of(&AppError::RateLimited {
                retry_after_secs: 90
            }),
            SignInFailure::RateLimited
        );
    }
}
