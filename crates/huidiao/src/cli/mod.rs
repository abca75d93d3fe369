//! Subcommands besides `serve`: the newcomer's `demo` and the operator's `event publish`. Both
//! talk to a server over its public HTTP API, like any other client.

pub mod client;
pub mod demo;
pub mod publish;
