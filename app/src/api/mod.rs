//! Server functions, one file per feature. Each is an adapter: it takes the verified principal
//! from the request (`context`), calls one use case in `crate::server::service` and converts
//! its error for the wire (`error`).

pub mod client;
mod codec;
#[cfg(feature = "ssr")]
mod context;
mod error;
pub use codec::JsonText;
pub use error::AppError;

mod audit;
mod instances;
mod members;
mod operations;
mod session;
mod tokens;
mod webhooks;
pub use audit::*;
pub use instances::*;
pub use members::*;
pub use operations::*;
pub use session::*;
pub use tokens::*;
pub use webhooks::*;
