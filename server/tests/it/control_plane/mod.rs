//! Control-plane API v1 end to end: the portal against the reference control plane
//! (`portico-control-plane`, out of process) on both stores, callbacks and their refusals, and a
//! provider's control plane written in Node with the `standardwebhooks` package.

mod callbacks;
mod harness;
mod node;
pub(crate) mod openapi;
mod reference;
mod reference_process;
mod restart;
