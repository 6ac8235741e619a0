//! The embedded session for a browser that keeps no cookie for the portal.
//!
//! Inside a provider's iframe the session normally lives in a `Partitioned` cookie. A browser
//! that refuses even those would leave the frame signed out, so `/embed` also hands the token
//! to the page in the URL fragment (`#portico-session=…`, never sent to any server). The page's
//! inline script (`ui/embed.js`) takes it out of the address at once. Only when the server did
//! not see a cookie (the page rendered signed out, `#frame-sign-in`) is it used: kept for the
//! tab in `sessionStorage` where the browser allows that, sent in the `x-portico-session` header
//! with every request the page makes to the portal (the script wraps `fetch`, which the bundle's
//! server-function calls also go through), and the page itself is loaded again with it, as is
//! every page the user then opens inside the frame. The server accepts that header for embedded
//! sessions only.

/// The key of the fragment that carries the token.
pub const FRAGMENT_KEY: &str = "portico-session";
/// The header that carries it (the server's `auth::SESSION_HEADER`).
pub const HEADER: &str = "x-portico-session";
