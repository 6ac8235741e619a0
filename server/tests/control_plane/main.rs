//! Control-plane API v1 end to end, in one test binary: the portal against the reference
//! control plane (`portico-control-plane`, out of process) on both stores, callbacks and their
//! refusals, and a provider's control plane written in Node with the `standardwebhooks` package.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod callbacks;
mod harness;
mod node;
mod openapi;
mod reference;
mod reference_process;
mod restart;
