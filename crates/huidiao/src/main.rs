//! The `huidiao` command line: parse, configure logging, and call into the library.

use clap::{Parser, Subcommand};
use huidiao::cli::admin::AdminArgs;
use huidiao::cli::demo::DemoArgs;
use huidiao::cli::publish::PublishArgs;
use huidiao::config::ServeConfig;

/// mimalloc instead of glibc malloc: delivery allocates and frees small buffers on several
/// threads at once, where glibc's arena locks and consolidation cost a measurable share of CPU
/// (see docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "huidiao",
    version,
    about = "A self-hosted callback (webhook) server speaking the Coze callback API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server. (Boxed: its flags outweigh the other commands' many times over.)
    Serve(Box<ServeConfig>),
    /// Show the whole system working: a server, a receiver, one event of each type, verified.
    Demo(DemoArgs),
    /// Work with events on a running server.
    #[command(subcommand)]
    Event(EventCommand),
    /// Operate a running server over its HTTP API: accounts, users, tokens, connectors, apps,
    /// deliveries, events, limits.
    Admin(AdminArgs),
}

#[derive(Subcommand)]
enum EventCommand {
    /// Publish one event (POST /admin/v1/events) and print its id and delivery count.
    Publish(PublishArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // The server logs every request; the client commands only say what went wrong.
    let serving = matches!(cli.command, Command::Serve(_));
    let default_level = match cli.command {
        Command::Serve(_) => "info",
        Command::Demo(_) | Command::Event(_) | Command::Admin(_) => "warn",
    };
    let otlp_endpoint = match &cli.command {
        Command::Serve(config) => config.otlp_endpoint.clone(),
        _ => None,
    };
    let telemetry = match huidiao::telemetry::init(default_level, otlp_endpoint.as_ref()) {
        Ok(telemetry) => telemetry,
        Err(message) => {
            eprintln!("huidiao: {message}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("huidiao: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Serve(config) => runtime.block_on(huidiao::server::serve(*config)),
        Command::Demo(args) => runtime.block_on(huidiao::cli::demo::run(args)),
        Command::Event(EventCommand::Publish(args)) => runtime.block_on(huidiao::cli::publish::run(args)),
        Command::Admin(args) => runtime.block_on(huidiao::cli::admin::run(args)),
    };
    // Stop the runtime's tasks (they may still log) before the exporter sends what is queued.
    drop(runtime);
    telemetry.shutdown();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) if serving => {
            tracing::error!("{message}");
            std::process::ExitCode::FAILURE
        }
        // A client command's error is for the person who typed it: one plain line.
        Err(message) => {
            eprintln!("huidiao: error: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}
