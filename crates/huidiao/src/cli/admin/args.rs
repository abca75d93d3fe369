//! The command line of `huidiao admin`: its global flags and one subcommand per operator action
//! the HTTP API has.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::cli::client::Connection;
use crate::cli::publish::EventArgs;

#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// Where a personal access token is when HUIDIAO_TOKEN is unset (app and delivery commands).
    #[arg(long, global = true)]
    pub token_file: Option<PathBuf>,
    /// Print the answer's data as JSON, for scripts.
    #[arg(long, global = true, conflicts_with = "quiet")]
    pub json: bool,
    /// Print only ids (for `token create`, the token itself), one a line.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Accounts (tenants).
    #[command(subcommand)]
    Account(AccountCommand),
    /// Users of an account.
    #[command(subcommand)]
    User(UserCommand),
    /// Personal access tokens of users.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Connectors (channels) whose apps receive the events of bots published to them.
    #[command(subcommand)]
    Connector(ConnectorCommand),
    /// Callback apps, as their owner (personal access token).
    #[command(subcommand)]
    App(AppCommand),
    /// An app's delivery log, as its owner (personal access token).
    #[command(subcommand)]
    Delivery(DeliveryCommand),
    /// Publishing events.
    #[command(subcommand)]
    Event(AdminEventCommand),
    /// An app's delivery rate cap.
    #[command(subcommand)]
    Limits(LimitsCommand),
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create an account.
    Create {
        #[arg(long)]
        name: String,
        /// personal, team or enterprise.
        #[arg(long)]
        edition: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user in an account.
    Create {
        #[arg(long)]
        account: String,
        #[arg(long)]
        name: String,
        /// super_admin, admin or member (the default).
        #[arg(long)]
        role: Option<String>,
        /// Mark the user a plugin developer: only they may subscribe to benefit.plugin.scale.*.
        #[arg(long)]
        plugin_developer: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a personal access token; it is shown only this once.
    Create {
        #[arg(long)]
        user: String,
        #[arg(long)]
        name: Option<String>,
        /// A permission to grant (default: all six); repeat for several.
        #[arg(long = "permission")]
        permissions: Vec<String>,
        /// Lifetime, e.g. 30d or 12h (default: it does not expire).
        #[arg(long, value_parser = humantime::parse_duration)]
        expires_in: Option<std::time::Duration>,
    },
    /// Revoke a token; it stops working at once.
    Revoke { token_id: String },
}

#[derive(Debug, Subcommand)]
pub enum ConnectorCommand {
    /// Create a connector owned by a user.
    Create {
        #[arg(long)]
        user: String,
        #[arg(long)]
        name: String,
    },
    /// Show the connector's review of a bot published to it, with its history.
    Review { connector_id: String, bot_id: String },
}

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// List the apps the token may see, newest first.
    List {
        /// normal or connector.
        #[arg(long)]
        app_type: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Create a normal app (--name) or a connector app (--connector).
    Create {
        #[arg(long, required_unless_present = "connector")]
        name: Option<String>,
        #[arg(long, conflicts_with = "name")]
        connector: Option<String>,
    },
    /// Rename an app or set its callback URL (the server verifies the URL first).
    Update {
        app_id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long, required_unless_present = "name")]
        callback_url: Option<String>,
    },
    /// Delete an app.
    Delete { app_id: String },
    /// Subscribe an app to event types.
    Subscribe {
        app_id: String,
        #[arg(required = true)]
        event_types: Vec<String>,
    },
    /// Unsubscribe an app from event types.
    Unsubscribe {
        app_id: String,
        #[arg(required = true)]
        event_types: Vec<String>,
    },
    /// The event types an app is subscribed to.
    Events {
        app_id: String,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Pause deliveries to any tenant's app (admin token): its deliveries wait as pending.
    Pause {
        app_id: String,
        /// Why, shown to the app's owner as paused_reason.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Resume a paused app (admin token): its waiting deliveries are pushed.
    Resume { app_id: String },
    /// Push a sample event to any tenant's app now, marked "test": true (admin token); answers
    /// the delivery_id to look up in its delivery log.
    TestEvent {
        app_id: String,
        /// Any type the app could subscribe to, subscribed or not.
        #[arg(long)]
        event_type: String,
    },
    /// Any tenant's app's delivery stats (admin token): counts by outcome, latency p50/p99.
    Stats {
        app_id: String,
        /// Window start, ms since the epoch; default 24 hours before --until.
        #[arg(long)]
        since: Option<i64>,
        /// Window end (exclusive), ms since the epoch; default now.
        #[arg(long)]
        until: Option<i64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeliveryCommand {
    /// An app's deliveries, newest first.
    List {
        #[arg(long)]
        app: String,
        /// pending, succeeded, failed, cancelled or skipped.
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        event_type: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// One delivery with every attempt and the body that was sent.
    Show {
        #[arg(long)]
        app: String,
        delivery_id: String,
    },
    /// Queue a delivery again (same event_id).
    Resend {
        #[arg(long)]
        app: String,
        delivery_id: String,
    },
    /// Queue any tenant's app's finished deliveries again (admin token), each with its event_id
    /// and body; at most 100000 per call.
    Replay {
        #[arg(long)]
        app: String,
        /// succeeded, failed or cancelled (default: all three).
        #[arg(long)]
        status: Option<String>,
        /// Only deliveries created at or after this time (ms since the epoch).
        #[arg(long)]
        since: Option<i64>,
        /// Only deliveries created before this time (ms since the epoch).
        #[arg(long)]
        until: Option<i64>,
        #[arg(long)]
        event_type: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminEventCommand {
    /// Publish one event (POST /admin/v1/events).
    Publish(EventArgs),
    /// One event with its deliveries: status, attempts, the channel's review.
    Show { event_id: String },
    /// Published events, newest first.
    List {
        #[arg(long)]
        event_type: Option<String>,
        /// The owning account.
        #[arg(long)]
        account: Option<String>,
        /// Only events that happened at or after this time (ms since the epoch).
        #[arg(long)]
        since: Option<i64>,
        /// Only events that happened before this time (ms since the epoch).
        #[arg(long)]
        until: Option<i64>,
        #[command(flatten)]
        page: PageArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum LimitsCommand {
    /// An app's delivery rate cap.
    Show { app_id: String },
    /// Cap an app's deliveries per second, or remove the cap.
    Set {
        app_id: String,
        #[arg(long, required_unless_present = "no_cap")]
        max_per_second: Option<u32>,
        #[arg(long, conflicts_with = "max_per_second")]
        no_cap: bool,
    },
}

#[derive(Debug, Args)]
pub struct PageArgs {
    /// Items per page, 1 to 50.
    #[arg(long)]
    pub page_size: Option<u32>,
    /// The next_page_token of the previous page.
    #[arg(long)]
    pub page_token: Option<String>,
}
