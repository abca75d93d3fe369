//! Every setting of `huidiao serve` in one place: flag, environment variable and default.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::api::connections::ConnectionLimits;
use crate::dispatch::retention::Retention;
use crate::dispatch::retry::{parse_schedule, RetryPolicy, DEFAULT_SCHEDULE};
use crate::dispatch::scheduler::{Settings, MIN_LEASE_DURATION};
use crate::domain::notifications::DEFAULT_FAILING_AFTER;
use crate::notify::{OperatorWebhook, SECRET_ENV};

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

    /// Export traces over OTLP/HTTP (protobuf) to this collector base URL, e.g.
    /// `http://127.0.0.1:4318` (`/v1/traces` is appended): one trace per request, its logid an
    /// attribute. Off when unset.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", value_parser = parse_otlp_endpoint)]
    pub otlp_endpoint: Option<url::Url>,

    /// Allow callback URLs that point at loopback, private and other non-public addresses.
    /// For development and tests only.
    #[arg(long, env = "HUIDIAO_ALLOW_PRIVATE_CALLBACK_URLS", value_parser = parse_switch, default_value = "false", num_args = 0..=1, default_missing_value = "true")]
    pub allow_private_callback_urls: bool,

    /// Send pushes and challenges through this HTTP proxy (`http://host:port`). Proxy settings of
    /// the environment (`HTTP_PROXY`, `HTTPS_PROXY`) are never used. Through a proxy, a target's
    /// name is resolved and refused unless all its addresses are public before it is sent; the
    /// proxy resolves it again, so it must refuse non-public destinations itself
    /// (docs/security.md).
    #[arg(long, env = "HUIDIAO_OUTBOUND_PROXY", value_parser = parse_proxy)]
    pub outbound_proxy: Option<String>,

    /// Largest request body accepted, in bytes; larger bodies answer HTTP 413 with code 4000.
    /// Publishing endpoints take up to `--max-batch-body-bytes` instead.
    #[arg(long, env = "HUIDIAO_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Live callback apps one account may have.
    #[arg(long, env = "HUIDIAO_MAX_APPS_PER_ACCOUNT", default_value_t = 1000)]
    pub max_apps_per_account: i64,

    /// Requests per second each personal access token may make, per node; 0 is no limit.
    /// Over it, requests answer code 4013 (HTTP 429) with `Retry-After`.
    #[arg(long, env = "HUIDIAO_RATE_LIMIT_PER_TOKEN", default_value_t = 100)]
    pub rate_limit_per_token: u32,

    /// Requests a token may make at once above its steady rate.
    #[arg(long, env = "HUIDIAO_RATE_LIMIT_BURST", default_value_t = 200)]
    pub rate_limit_burst: u32,

    /// Requests per second the admin token may make, per node (bursts of twice that); 0, the
    /// default, is no limit: the admin token is the platform publishing its events one request at
    /// a time, not a tenant.
    #[arg(long, env = "HUIDIAO_RATE_LIMIT_ADMIN", default_value_t = 0)]
    pub rate_limit_admin: u32,

    /// Failed authentications per second one client address may make, per node (bursts of twice
    /// that); over it they answer 4013 (HTTP 429) with `Retry-After`. Valid tokens are never
    /// refused by it. 0 is no limit.
    #[arg(long, env = "HUIDIAO_RATE_LIMIT_FAILED_AUTH_PER_IP", default_value_t = 10)]
    pub rate_limit_failed_auth_per_ip: u32,

    /// Time a client has to send a whole request header; it is also how long an idle kept-alive
    /// connection stays open. Slower or silent clients are disconnected.
    #[arg(long, env = "HUIDIAO_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_read_timeout: Duration,

    /// Time a client has to send a whole request body once its header has arrived; after it the
    /// request answers code 4000 and the connection closes.
    #[arg(long, env = "HUIDIAO_BODY_READ_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub body_read_timeout: Duration,

    /// Client connections open at once; more clients wait in the kernel's accept queue until one
    /// closes. Keep it below the process's file descriptor limit (`ulimit -n`).
    #[arg(long, env = "HUIDIAO_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,

    /// Turns on `POST /admin/v1/faults`, which makes a background task panic, for testing the
    /// supervisor. Never in production.
    #[arg(long, env = "HUIDIAO_ENABLE_FAULT_INJECTION", value_parser = parse_switch, default_value = "false", num_args = 0..=1, default_missing_value = "true")]
    pub enable_fault_injection: bool,

    /// Bytes of the ballast file kept in the data dir (SQLite): released when the disk fills, so
    /// accepted events can still be delivered and recorded; 0 keeps none.
    #[arg(long, env = "HUIDIAO_DISK_BALLAST_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub disk_ballast_bytes: u64,

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

    /// Pauses an app whose delivery attempts have all failed for this long, with no success in
    /// between (`0` never does); its deliveries wait as pending until it is resumed.
    #[arg(long, env = "HUIDIAO_DISABLE_AFTER", default_value = "5d", value_parser = parse_disable_after)]
    pub disable_after: DisableAfter,

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

    /// How long an idempotency key of a publish keeps matching: publishing the key again within
    /// it answers the first event; after it the key makes a new event. `0s` turns matching off.
    #[arg(long, env = "HUIDIAO_IDEMPOTENCY_WINDOW", default_value = "24h", value_parser = humantime::parse_duration)]
    pub idempotency_window: Duration,

    /// Largest body of the publishing endpoints (a batch holds up to 1000 events), in bytes.
    #[arg(long, env = "HUIDIAO_MAX_BATCH_BODY_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_batch_body_bytes: usize,

    /// How long succeeded, skipped and cancelled deliveries and their attempts (and operator
    /// notifications sent) are kept.
    #[arg(long, env = "HUIDIAO_RETENTION_SUCCEEDED", default_value = "30d", value_parser = humantime::parse_duration)]
    pub retention_succeeded: Duration,

    /// How long failed deliveries and their attempts (and operator notifications given up) are
    /// kept.
    #[arg(long, env = "HUIDIAO_RETENTION_FAILED", default_value = "90d", value_parser = humantime::parse_duration)]
    pub retention_failed: Duration,

    /// Time between pruning rounds.
    #[arg(long, env = "HUIDIAO_RETENTION_INTERVAL", default_value = "10m", value_parser = humantime::parse_duration)]
    pub retention_interval: Duration,

    /// Push operator notifications (`delivery.failing`, `delivery.exhausted`, `app.paused`,
    /// `app.resumed`) to this http(s) URL, signed with Standard Webhooks with the `whsec_` secret
    /// in HUIDIAO_OPERATOR_WEBHOOK_SECRET. Off when unset: none is stored or sent.
    #[arg(long, env = "HUIDIAO_OPERATOR_WEBHOOK_URL", value_parser = parse_webhook_url)]
    pub operator_webhook_url: Option<url::Url>,

    /// The failed attempt of a delivery (counted since it was last queued) that sends
    /// `delivery.failing`.
    #[arg(long, env = "HUIDIAO_FAILING_AFTER", default_value_t = DEFAULT_FAILING_AFTER, value_parser = clap::value_parser!(u32).range(1..))]
    pub failing_after: u32,
}

/// A retry schedule as given on the command line (one value holding the whole list).
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule(pub Vec<Duration>);

/// `--disable-after`: `None` for `0`, never.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DisableAfter(pub Option<Duration>);

fn parse_disable_after(value: &str) -> Result<DisableAfter, String> {
    let window =
        humantime::parse_duration(value.trim()).map_err(|e| format!("{value:?} is not a duration: {e}"))?;
    Ok(DisableAfter((!window.is_zero()).then_some(window)))
}

impl ServeConfig {
    pub fn connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: self.header_read_timeout,
            body_read_timeout: self.body_read_timeout,
            max_connections: self.max_connections.max(1),
        }
    }
}

impl DeliveryConfig {
    pub fn scheduler_settings(&self, node: i64) -> Settings {
        Settings {
            retry: RetryPolicy {
                schedule: self.retry_schedule.0.clone(),
                jitter: self.retry_jitter.clamp(0.0, 1.0),
                disable_after: self.disable_after.0,
            },
            max_in_flight: self.max_in_flight.max(1),
            max_in_flight_per_app: self.max_in_flight_per_app.max(1),
            lease_batch: self.lease_batch.max(1),
            lease_duration: self.lease_duration.max(MIN_LEASE_DURATION),
            idle_poll: IDLE_POLL,
            node,
            failing_after: self.operator_webhook_url.is_some().then_some(self.failing_after),
        }
    }

    /// The operator's webhook, its secret read from [`SECRET_ENV`]; `None` when no URL is set.
    pub fn operator_webhook(&self) -> Result<Option<OperatorWebhook>, String> {
        let secret = std::env::var(SECRET_ENV).ok();
        OperatorWebhook::new(self.operator_webhook_url.clone(), secret.as_deref())
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

/// An `http://` or `https://` proxy URL, kept as given.
fn parse_proxy(value: &str) -> Result<String, String> {
    match url::Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(value.to_owned()),
        Ok(_) => Err("expected an http:// or https:// proxy URL".to_owned()),
        Err(e) => Err(format!("not a URL: {e}")),
    }
}

/// Accepts `1/0`, `true/false`, `yes/no`, `on/off` for boolean switches given by environment.
fn parse_switch(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        other => Err(format!("expected 1/0, true/false, yes/no or on/off, got {other:?}")),
    }
}

/// The operator's webhook: an http or https URL.
fn parse_webhook_url(value: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(value)
        .map_err(|e| format!("not a URL ({e}); e.g. https://ops.example.com/huidiao"))?;
    match url.scheme() {
        "http" | "https" if url.host().is_some() => Ok(url),
        other => Err(format!("expected an http:// or https:// URL with a host, got a {other}: URL")),
    }
}

/// An OTLP collector's base URL: http or https, so a typo fails the start instead of every export.
fn parse_otlp_endpoint(value: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(value).map_err(|e| format!("not a URL ({e}); e.g. http://127.0.0.1:4318"))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(format!("the scheme must be http or https (OTLP/HTTP), got {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{
        parse_disable_after, parse_otlp_endpoint, parse_proxy, parse_switch, parse_webhook_url, DisableAfter,
        ServeConfig,
    };

    #[derive(Parser)]
    struct Serve {
        #[command(flatten)]
        config: ServeConfig,
    }

    #[test]
    fn operator_notifications_are_off_without_a_url() {
        let off = Serve::try_parse_from(["serve"]).unwrap().config.delivery;
        assert_eq!((off.operator_webhook_url.clone(), off.failing_after), (None, 4));
        assert_eq!(off.scheduler_settings(0).failing_after, None, "no URL, no notifications");
        let on = Serve::try_parse_from([
            "serve",
            "--operator-webhook-url",
            "http://127.0.0.1:9/hook",
            "--failing-after",
            "2",
        ])
        .unwrap()
        .config
        .delivery;
        assert_eq!(on.scheduler_settings(0).failing_after, Some(2));
        assert!(
            Serve::try_parse_from(["serve", "--failing-after", "0"]).is_err(),
            "the 0th attempt never fails"
        );
        assert!(parse_webhook_url("https://ops.example.com/h").is_ok());
        assert!(parse_webhook_url("ftp://ops.example.com/h").is_err());
        assert!(parse_webhook_url("ops.example.com").is_err());
    }

    #[test]
    fn otlp_endpoints_are_http_urls() {
        assert!(parse_otlp_endpoint("http://127.0.0.1:4318").is_ok());
        assert!(parse_otlp_endpoint("grpc://127.0.0.1:4317").unwrap_err().contains("http or https"));
        assert!(parse_otlp_endpoint("127.0.0.1:4318").is_err());
    }

    #[test]
    fn proxies() {
        assert!(parse_proxy("http://127.0.0.1:3128").is_ok());
        assert!(parse_proxy("socks5://127.0.0.1:1080").is_err());
        assert!(parse_proxy("127.0.0.1:3128").is_err());
    }

    #[test]
    fn disable_after_zero_is_never() {
        assert_eq!(parse_disable_after("0"), Ok(DisableAfter(None)));
        assert_eq!(
            parse_disable_after("5d"),
            Ok(DisableAfter(Some(std::time::Duration::from_secs(432_000))))
        );
        assert!(parse_disable_after("soon").is_err());
    }

    #[test]
    fn switches() {
        assert_eq!(parse_switch("1"), Ok(true));
        assert_eq!(parse_switch("ON"), Ok(true));
        assert_eq!(parse_switch("0"), Ok(false));
        assert!(parse_switch("maybe").is_err());
    }
}
