//! Every setting of `huidiao serve` in one place: flag, environment variable and default.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::dispatch::retention::Retention;
use crate::dispatch::retry::{parse_schedule, RetryPolicy, DEFAULT_SCHEDULE};
use crate::dispatch::scheduler::{Settings, MIN_LEASE_DURATION};

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

    /// A `postgres://` URL switches storage to PostgreSQL, shared by every node pointed at it.
    #[arg(long, env = "HUIDIAO_DATABASE_URL")]
    pub database_url: Option<String>,

    /// Connections to PostgreSQL this node keeps at most.
    #[arg(long, env = "HUIDIAO_DATABASE_POOL_SIZE", default_value_t = 16)]
    pub database_pool_size: usize,

    /// Allow callback URLs that point at loopback, private and other non-public addresses.
    /// For development and tests only.
    #[arg(long, env = "HUIDIAO_ALLOW_PRIVATE_CALLBACK_URLS", value_parser = parse_switch, default_value = "false", num_args = 0..=1, default_missing_value = "true")]
    pub allow_private_callback_urls: bool,

    /// Largest request body accepted, in bytes; larger bodies answer HTTP 413 with code 4000.
    /// Publishing endpoints take up to `--max-batch-body-bytes` instead.
    #[arg(long, env = "HUIDIAO_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Live callback apps one account may have.
    #[arg(long, env = "HUIDIAO_MAX_APPS_PER_ACCOUNT", default_value_t = 1000)]
    pub max_apps_per_account: i64,

    /// Requests per second each token (and the admin token) may make, per node; 0 is no limit.
    /// Over it, requests answer code 4013 (HTTP 429) with `Retry-After`.
    #[arg(long, env = "HUIDIAO_RATE_LIMIT_PER_TOKEN", default_value_t = 100)]
    pub rate_limit_per_token: u32,

    /// Requests a token may make at once above its steady rate.
    #[arg(long, env = "HUIDIAO_RATE_LIMIT_BURST", default_value_t = 200)]
    pub rate_limit_burst: u32,

    /// Failed authentications per second one client address may make, per node (bursts of twice
    /// that); over it they answer 4013 (HTTP 429) with `Retry-After`. Valid tokens are never
    /// refused by it. 0 is no limit.
    #[arg(long, env = "HUIDIAO_RATE_LIMIT_FAILED_AUTH_PER_IP", default_value_t = 10)]
    pub rate_limit_failed_auth_per_ip: u32,

    #[command(flatten)]
    pub delivery: DeliveryConfig,

    /// An admin token given by an embedding program (`huidiao demo`); `huidiao serve` reads it
    /// from the environment or the data dir instead.
    #[arg(skip)]
    pub admin_token: Option<String>,
}

/// How events are accepted, delivered, retried and kept.
#[derive(Debug, Clone, Args)]
pub struct DeliveryConfig {
    /// Delays between attempts, comma-separated (`ms`, `s`, `m`, `h`, `d`); after the last one a
    /// delivery is failed.
    #[arg(long, env = "HUIDIAO_RETRY_SCHEDULE", default_value = DEFAULT_SCHEDULE, value_parser = |s: &str| parse_schedule(s).map(Schedule))]
    pub retry_schedule: Schedule,

    /// Each retry delay varies randomly by up to ± this fraction.
    #[arg(long, env = "HUIDIAO_RETRY_JITTER", default_value_t = 0.1)]
    pub retry_jitter: f64,

    /// Pushes in flight at once, over all apps.
    #[arg(long, env = "HUIDIAO_MAX_IN_FLIGHT", default_value_t = 256)]
    pub max_in_flight: usize,

    /// Pushes in flight at once to one app.
    #[arg(long, env = "HUIDIAO_MAX_IN_FLIGHT_PER_APP", default_value_t = 16)]
    pub max_in_flight_per_app: usize,

    /// Deliveries leased from storage per round trip.
    #[arg(long, env = "HUIDIAO_LEASE_BATCH", default_value_t = 256)]
    pub lease_batch: usize,

    /// How long a leased delivery stays taken; a node that dies holding it gives it up after this.
    /// At least 30 s (shorter values are raised), so that every push fits in its lease.
    #[arg(long, env = "HUIDIAO_LEASE_DURATION", default_value = "5m", value_parser = humantime::parse_duration)]
    pub lease_duration: Duration,

    /// Largest `event` object accepted in a publish, in bytes.
    #[arg(long, env = "HUIDIAO_MAX_EVENT_BYTES", default_value_t = 64 * 1024)]
    pub max_event_bytes: usize,

    /// Largest body of the publishing endpoints (a batch holds up to 1000 events), in bytes.
    #[arg(long, env = "HUIDIAO_MAX_BATCH_BODY_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_batch_body_bytes: usize,

    /// How long succeeded, skipped and cancelled deliveries and their attempts are kept.
    #[arg(long, env = "HUIDIAO_RETENTION_SUCCEEDED", default_value = "30d", value_parser = humantime::parse_duration)]
    pub retention_succeeded: Duration,

    /// How long failed deliveries and their attempts are kept.
    #[arg(long, env = "HUIDIAO_RETENTION_FAILED", default_value = "90d", value_parser = humantime::parse_duration)]
    pub retention_failed: Duration,

    /// Time between pruning rounds.
    #[arg(long, env = "HUIDIAO_RETENTION_INTERVAL", default_value = "10m", value_parser = humantime::parse_duration)]
    pub retention_interval: Duration,
}

/// A retry schedule as given on the command line (one value holding the whole list).
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule(pub Vec<Duration>);

impl DeliveryConfig {
    pub fn scheduler_settings(&self, allow_private: bool, node: i64) -> Settings {
        Settings {
            retry: RetryPolicy {
                schedule: self.retry_schedule.0.clone(),
                jitter: self.retry_jitter.clamp(0.0, 1.0),
            },
            max_in_flight: self.max_in_flight.max(1),
            max_in_flight_per_app: self.max_in_flight_per_app.max(1),
            lease_batch: self.lease_batch.max(1),
            lease_duration: self.lease_duration.max(MIN_LEASE_DURATION),
            idle_poll: IDLE_POLL,
            allow_private,
            node,
        }
    }

    pub fn retention(&self) -> Retention {
        Retention {
            succeeded: self.retention_succeeded,
            failed: self.retention_failed,
            interval: self.retention_interval,
        }
    }
}

/// Longest time the scheduler sleeps without being woken; a safety net, since publishing,
/// resending and finished attempts wake it at once.
pub const IDLE_POLL: Duration = Duration::from_secs(1);

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
        other => Err(format!("expected 1/0, true/false, yes/no or on/off, got {other:?}")),
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
