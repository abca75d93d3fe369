//! The `huidiao` command line: parse, configure logging, and call into the library.

use clap::{Parser, Subcommand};
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
    /// Run the server.
    Serve(ServeConfig),
    /// Show the whole system working: a server, a receiver, one event of each type, verified.
    Demo(DemoArgs),
    /// Work with events on a running server.
    #[command(subcommand)]
    Event(EventCommand),
}

#[derive(Subcommand)]
enum EventCommand {
    /// Publish one event (POST /admin/v1/events) and print its id and delivery count.
    Publish(PublishArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // The server logs every request; the client commands only say what went wrong.
    let default_level = match cli.command {
        Command::Serve(_) => "info",
        Command::Demo(_) | Command::Event(_) => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HUIDIAO_LOG")
                .unwrap_or_else(|_| default_level.into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("huidiao: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Serve(config) => runtime.block_on(huidiao::server::serve(config)),
        Command::Demo(args) => runtime.block_on(huidiao::cli::demo::run(args)),
        Command::Event(EventCommand::Publish(args)) => runtime.block_on(huidiao::cli::publish::run(args)),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            std::process::ExitCode::FAILURE
        }
    }
}
