//! Subcommands besides `serve`: the newcomer's `demo`, the operator's `event publish` and
//! `admin …`. They talk to a server over its public HTTP API, like any other client.

pub mod admin;
pub mod client;
pub mod demo;
pub mod publish;
