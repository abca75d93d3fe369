//! Every setting of `huidiao serve` in one place: flag, environment variable and default.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

/// Settings of `huidiao serve`. Each flag can also be given through the environment variable
/// named beside it; the flag wins when both are set.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Address to listen on. Port 0 picks a free port (the ready log line says which).
    #[arg(long, env = "HUIDIAO_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Directory of the embedded storage (SQLite database and generated admin token).
    #[arg(long, env = "HUIDIAO_DATA_DIR", default_value = "./huidiao-data")]
    pub data_dir: PathBuf,

    /// A `postgres://` URL switches storage to PostgreSQL (not built yet: refused at start).
    #[arg(long, env = "HUIDIAO_DATABASE_URL")]
    pub database_url: Option<String>,

    /// Allow callback URLs that point at loopback, private and other non-public addresses.
    /// For development and tests only.
    #[arg(long, env = "HUIDIAO_ALLOW_PRIVATE_CALLBACK_URLS", value_parser = parse_switch, default_value = "false", num_args = 0..=1, default_missing_value = "true")]
    pub allow_private_callback_urls: bool,

    /// Largest request body accepted, in bytes; larger bodies answer HTTP 413 with code 4000.
    #[arg(long, env = "HUIDIAO_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
}

/// The operator token comes from the environment only, never from a flag, so that it does not
/// show up in process listings.
pub const ADMIN_TOKEN_ENV: &str = "HUIDIAO_ADMIN_TOKEN";

/// How long a callback URL has to answer the `url_verification` challenge [Coze].
pub const URL_VERIFICATION_TIMEOUT: Duration = Duration::from_secs(3);

/// Accepts `1/0`, `true/false`, `yes/no`, `on/off` for boolean switches given by environment.
fn parse_switch(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        other => Err(format!(
            "expected 1/0, true/false, yes/no or on/off, got {other:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_switch;

    #[test]
    fn switches() {
        assert_eq!(parse_switch("1"), Ok(true));
        assert_eq!(parse_switch("ON"), Ok(true));
        assert_eq!(parse_switch("0"), Ok(false));
        assert!(parse_switch("maybe").is_err());
    }
}
