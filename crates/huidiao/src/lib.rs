//! huidiao: a self-hosted callback (webhook) server that speaks the Coze open platform's
//! callback API.
//!
//! One event travels through the modules in this order:
//! [`api`] (HTTP, thin handlers) → [`domain`] (rules, no I/O) → [`store`] (one trait, SQLite
//! backend) → [`dispatch`] (signed HTTP pushes behind the address guard).

pub mod api;
pub mod cli;
pub mod config;
pub mod disk;
pub mod dispatch;
pub mod domain;
pub mod error;
pub mod files;
pub mod health;
pub mod ids;
pub mod metrics;
pub mod notify;
pub mod publishing;
pub mod server;
pub mod store;
pub mod supervisor;
pub mod telemetry;
pub mod wake;
