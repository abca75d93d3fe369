//! `huidiao-bench`: loads a real `huidiao serve` process with pushes to a sink of its own on
//! 127.0.0.1, measures the same load posted straight to the sink (the machine's ceiling), and
//! prints a table and, as its last line, one JSON object. See docs/benchmarks.md.

mod client;
mod cpu;
mod driver;
mod events;
mod load;
mod raw;
mod report;
mod scenarios;
mod sink;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Any failure of a run; the run stops and says what went wrong.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Parser)]
#[command(name = "huidiao-bench", about = "Benchmarks of huidiao against the machine's own limit")]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,

    /// Small sizes that finish in under a minute on 2 cores (smoke runs, CI).
    #[arg(long, global = true)]
    quick: bool,

    /// Storage of the server under test.
    #[arg(long, global = true, value_enum, default_value = "sqlite")]
    backend: Backend,

    /// The `huidiao` binary to run; by default `$CARGO_TARGET_DIR/release/huidiao`, else the one
    /// beside this program (both come from `cargo build --release -p huidiao`).
    #[arg(long, global = true)]
    huidiao: Option<PathBuf>,

    /// PostgreSQL database for `--backend postgres`; each run gets a fresh schema in it.
    #[arg(long, global = true, default_value = "postgres://root@127.0.0.1:5432/test")]
    postgres_url: String,

    /// Server nodes sharing one PostgreSQL schema (`--backend postgres`); requests go to them in
    /// turn.
    #[arg(long, global = true, default_value_t = 1)]
    nodes: usize,
}

#[derive(Subcommand)]
enum Scenario {
    /// 200,000 events published through the batch API as fast as accepted; deliveries/s from
    /// the first publish to the last delivery.
    Throughput {
        /// Apps the events are spread over, one account each.
        #[arg(long, default_value_t = 1)]
        apps: usize,
        /// Give every event its own `idempotency_key`, to compare publishing with keys and
        /// without.
        #[arg(long)]
        idempotency_keys: bool,
    },
    /// 100,000 single-event publishes from kept-alive producers, each sending when answered;
    /// deliveries/s, publish latency, CPU per event of the server (and of PostgreSQL).
    Publish {
        /// Concurrent producers, one kept-alive connection each.
        #[arg(long, default_value_t = 32)]
        producers: usize,
        /// Give every event its own `idempotency_key`.
        #[arg(long)]
        idempotency_keys: bool,
    },
    /// A steady 1,000 events/s for 30 s; publish-to-receipt latency.
    Latency,
    /// One event to 1,000 subscribed apps: time to ack, time until all are delivered.
    Fanout,
    /// 1,000,000 deliveries queued while the sink is down, then the sink comes up: drain rate
    /// and peak RSS.
    Backlog,
    /// Ten healthy apps beside one whose receiver takes 2 s per request: the healthy apps' p99
    /// with and without it.
    SlowReceiver,
    /// Management API: list and create requests/s and their p99, at rising concurrency.
    Api,
    /// Management API held at a stated rate for a stated time (open loop): errors and latency.
    ApiLoad {
        /// Requests per second offered.
        #[arg(long, default_value_t = 2000)]
        rate: usize,
        /// How long to hold it (at most 10 s with --quick).
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("huidiao-bench: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let server = driver::Options::new(cli.huidiao, cli.backend, cli.postgres_url, cli.nodes)?;
        let ctx = scenarios::Context { server, quick: cli.quick };
        match cli.scenario {
            Scenario::Throughput { apps, idempotency_keys } => {
                scenarios::throughput::run(&ctx, apps, idempotency_keys).await
            }
            Scenario::Publish { producers, idempotency_keys } => {
                scenarios::publish::run(&ctx, producers, idempotency_keys).await
            }
            Scenario::Latency => scenarios::latency::run(&ctx).await,
            Scenario::Fanout => scenarios::fanout::run(&ctx).await,
            Scenario::Backlog => scenarios::backlog::run(&ctx).await,
            Scenario::SlowReceiver => scenarios::slow_receiver::run(&ctx).await,
            Scenario::Api => scenarios::api::run(&ctx).await,
            Scenario::ApiLoad { rate, seconds } => scenarios::api_load::run(&ctx, rate, seconds).await,
        }
    });
    match result {
        Ok(report) => {
            report.print();
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("huidiao-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
