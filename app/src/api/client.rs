//! How the browser calls server functions: fetch, plus the embedded session's token in a
//! header when the browser keeps no cookie for the portal.
//!
//! Inside a provider's iframe the session normally lives in a `Partitioned` cookie. A browser
//! that refuses even those would leave the frame signed out, so `/embed` also hands the token
//! to the page in the URL fragment (`#portico-session=…`, never sent to any server). The page
//! takes it out of the address at once ([`take_from_location`]) and keeps it in memory. Only
//! when the server did not see a cookie (the page rendered signed out) is it used: kept for
//! the tab in `sessionStorage` where the browser allows that, and sent with each server
//! function call in the `x-portico-session` header ([`SessionClient`]). The server accepts
//! that header for embedded sessions only.

use leptos::server_fn::client::browser::BrowserClient;
use leptos::server_fn::client::Client;
use leptos::server_fn::error::FromServerFnError;
use leptos::server_fn::request::browser::BrowserRequest;
use leptos::server_fn::response::browser::BrowserResponse;
use leptos::server_fn::Bytes;
use std::cell::RefCell;
use std::future::Future;

/// The key of the fragment that carries the token.
pub const FRAGMENT_KEY: &str = "portico-session";
/// The header that carries it (the server's `auth::SESSION_HEADER`).
pub const HEADER: &str = "x-portico-session";
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
const STORAGE_KEY: &str = "portico-session";

thread_local! {
    /// The token from the fragment, until the page knows whether it needs it.
    static PENDING: RefCell<Option<String>> = const { RefCell::new(None) };
    /// The token in use: only set when the browser sent no cookie.
    static ACTIVE: RefCell<Option<String>> = const { RefCell::new(None) };
}

#[cfg(feature = "hydrate")]
fn storage() -> Option<leptos::web_sys::Storage> {
    // Throws where the browser blocks storage for third-party frames.
    leptos::prelude::window().session_storage().ok().flatten()
}

/// Takes the token out of the address (`#portico-session=…`), before anything else runs.
pub fn take_from_location() {
    #[cfg(feature = "hydrate")]
    {
        let window = leptos::prelude::window();
        let location = window.location();
        let hash = location.hash().unwrap_or_default();
        let prefix = format!("#{FRAGMENT_KEY}=");
        if let Some(token) = hash.strip_prefix(&prefix) {
            PENDING.with(|p| *p.borrow_mut() = Some(token.to_owned()));
            let clean = format!(
                "{}{}",
                location.pathname().unwrap_or_default(),
                location.search().unwrap_or_default()
            );
            if let Ok(history) = window.history() {
                let _ = history.replace_state_with_url(
                    &leptos::wasm_bindgen::JsValue::NULL,
                    "",
                    Some(&clean),
                );
            }
        }
    }
}

/// The page rendered signed out: use the token from the fragment, or the one kept for this
/// tab, if any. True when there is one to try.
pub fn activate() -> bool {
    let token = PENDING.with(|p| p.borrow_mut().take());
    #[cfg(feature = "hydrate")]
    let token = match token {
        Some(t) => {
            if let Some(s) = storage() {
                let _ = s.set_item(STORAGE_KEY, &t);
            }
            Some(t)
        }
        None => storage().and_then(|s| s.get_item(STORAGE_KEY).ok().flatten()),
    };
    let found = token.is_some();
    ACTIVE.with(|a| *a.borrow_mut() = token);
    found
}

/// The server refused the token (expired, signed out): forget it.
pub fn forget() {
    ACTIVE.with(|a| *a.borrow_mut() = None);
    PENDING.with(|p| *p.borrow_mut() = None);
    #[cfg(feature = "hydrate")]
    if let Some(s) = storage() {
        let _ = s.remove_item(STORAGE_KEY);
    }
}

/// Whether calls carry a token in the header.
pub fn active() -> bool {
    ACTIVE.with(|a| a.borrow().is_some())
}

/// The browser's fetch client, adding the session header when a token is active.
pub struct SessionClient;

impl<E, IS, OS> Client<E, IS, OS> for SessionClient
where
    E: FromServerFnError,
    IS: FromServerFnError,
    OS: FromServerFnError,
{
    type Request = BrowserRequest;
    type Response = BrowserResponse;

    fn send(req: Self::Request) -> impl Future<Output = Result<Self::Response, E>> + Send {
        if let Some(token) = ACTIVE.with(|a| a.borrow().clone()) {
            req.headers().set(HEADER, &token);
        }
        <BrowserClient as Client<E, IS, OS>>::send(req)
    }

    #[allow(clippy::type_complexity)]
    fn open_websocket(
        path: &str,
    ) -> impl Future<
        Output = Result<
            (
                impl futures::Stream<Item = Result<Bytes, Bytes>> + Send + 'static,
                impl futures::Sink<Bytes> + Send + 'static,
            ),
            E,
        >,
    > + Send {
        <BrowserClient as Client<E, IS, OS>>::open_websocket(path)
    }

    fn spawn(future: impl Future<Output = ()> + Send + 'static) {
        <BrowserClient as Client<E, IS, OS>>::spawn(future)
    }
}
