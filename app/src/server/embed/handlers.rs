//! `GET /embed?token=…`: the provider's iframe signs its user in.

use super::verify::{EmbedRejection, LEEWAY_SECS};
use crate::server::service::onboarding;
use crate::server::state::AppState;
use crate::server::store::{now_millis, StoreError};
use crate::server::{auth, security};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct EmbedQuery {
    #[serde(default)]
    token: Option<String>,
}

/// Signs the person named by an embed token in and sends the iframe to their instances. The
/// token is in the URL, so it is never logged (the request span records the path only), and
/// the answer is a redirect, so it does not stay in the frame's address either.
pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<EmbedQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let request_id = security::request_id(&headers);
    let Some(verifier) = state.embed.clone() else {
        return error_page(
            &state,
            StatusCode::NOT_FOUND,
            "Embedding is not enabled for this portal.",
            request_id,
        );
    };
    // A browser says where the response will land. Only a frame may sign in this way: a
    // top-level visit with someone else's token (login CSRF) would otherwise sign the victim
    // in as that someone in their main cookie jar.
    let dest = headers.get("sec-fetch-dest").and_then(|v| v.to_str().ok());
    if dest.is_some_and(|d| d != "iframe") {
        tracing::info!(%request_id, ?dest, "embed link opened outside a frame");
        return error_page(
            &state,
            StatusCode::FORBIDDEN,
            "This page opens inside the provider's site, not on its own.",
            request_id,
        );
    }
    let token = query.ok().and_then(|Query(q)| q.token).unwrap_or_default();
    if token.is_empty() {
        return error_page(
            &state,
            StatusCode::BAD_REQUEST,
            "This page opens from the provider's site, with a sign-in link it creates.",
            request_id,
        );
    }
    let now = u64::try_from(now_millis() / 1000).unwrap_or_default();
    let refuse = |why: EmbedRejection| {
        tracing::info!(%request_id, reason = %why, "embed token refused");
        error_page(&state, StatusCode::UNAUTHORIZED, why.message(), request_id)
    };
    let identity = match verifier.verify_fetching(&token, now).await {
        Ok(i) => i,
        Err(why) => return refuse(why),
    };
    let remember_until = i64::try_from((identity.exp + LEEWAY_SECS) * 1000).unwrap_or(i64::MAX);
    let started = async {
        if !state
            .store
            .use_embed_token(&identity.jti, remember_until, now_millis())
            .await?
        {
            return Ok(Err(EmbedRejection::Replayed));
        }
        let Some(user) = onboarding::embedded_member(
            &state,
            &identity.tenant,
            &identity.email,
            identity.name.as_deref(),
            identity.role,
        )
        .await?
        else {
            return Ok(Ok(None));
        };
        let token = auth::start_session(
            &state,
            &user,
            &identity.tenant,
            crate::domain::SessionOrigin::Embed,
        )
        .await?;
        let header_token = auth::start_session_lasting(
            &state,
            &user,
            &identity.tenant,
            crate::domain::SessionOrigin::EmbedHeader,
            auth::EMBED_HEADER_LIFETIME,
        )
        .await?;
        Ok::<_, StoreError>(Ok(Some((token, header_token))))
    }
    .await;
    match started {
        Ok(Ok(Some((session, header_token)))) => {
            tracing::info!(%request_id, tenant = %identity.tenant, email = %identity.email, "signed in by embed token");
            // For a browser that keeps no cookie for the frame, a second, short-lived token
            // travels in the fragment (never sent to a server, removed from the address at once
            // by the page's script); the page sends it with each server-function call, and the
            // server takes it from that header only. The cookie's token never reaches script.
            let location = format!(
                "/instances#{}={header_token}",
                crate::api::client::FRAGMENT_KEY
            );
            let mut res = (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
            let h = res.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&auth::session_cookie(&state, &session)) {
                h.insert(header::SET_COOKIE, v);
            }
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Ok(Ok(None)) => {
            tracing::info!(%request_id, tenant = %identity.tenant, email = %identity.email, "embed token for a non-member");
            error_page(
                &state,
                StatusCode::FORBIDDEN,
                "You do not have access to this organisation's portal. Ask one of its administrators to invite you.",
                request_id,
            )
        }
        Ok(Err(why)) => refuse(why),
        Err(e) => {
            tracing::error!(%request_id, error = ?e, "embed sign-in failed");
            security::internal_error_response(request_id)
        }
    }
}

/// A page the iframe can show: the portal's stylesheet, one message, the request id.
fn error_page(state: &AppState, status: StatusCode, message: &str, request_id: &str) -> Response {
    security::message_page(state, status, message, "", request_id)
}
