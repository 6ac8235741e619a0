//! Embedding the portal in the provider's site: verifying the embed tokens its backend mints
//! (`verify`), and the route that signs the iframe in with one (`handlers`).

mod handlers;
mod verify;

pub use handlers::sign_in;
pub use verify::*;
