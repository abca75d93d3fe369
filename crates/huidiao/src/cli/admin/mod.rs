//! `huidiao admin …`: the operator HTTP API from a shell, for people (tables) and scripts
//! (`--json`, or `-q` for just the id). Tenants, tokens, connectors, publishing, limits, pausing,
//! resuming and replaying use the admin token; the rest of the app and delivery commands exist
//! only under `/v1`, so they act as the app's owner with a personal access token (`HUIDIAO_TOKEN`
//! or `--token-file`).

mod args;
mod table;

use reqwest::Method;
use serde_json::{json, Value};

use super::client::{token_from, TOKEN_ENV};
use super::publish::{publish, EventArgs};
pub use args::AdminArgs;
use args::{
    AccountCommand, AdminCommand, AdminEventCommand, AppCommand, ConnectorCommand, DeliveryCommand,
    LimitsCommand, PageArgs, TokenCommand, UserCommand,
};
use table::{Output, Shape};

/// One HTTP call a command makes, as the operator or as an app's owner.
struct Call {
    method: Method,
    path: String,
    as_owner: bool,
    body: Option<Value>,
    shape: Shape,
}

fn admin(method: Method, path: String, body: Option<Value>, shape: Shape) -> Call {
    Call { method, path, as_owner: false, body, shape }
}

fn owner(method: Method, path: String, body: Option<Value>, shape: Shape) -> Call {
    Call { method, path, as_owner: true, body, shape }
}

/// `?name=value&…` of the values given, percent-encoded.
fn query(pairs: &[(&str, Option<String>)]) -> String {
    let mut url = url::Url::parse("http://q/").expect("a fixed URL parses");
    for (name, value) in pairs {
        if let Some(value) = value {
            url.query_pairs_mut().append_pair(name, value);
        }
    }
    url.query().map(|q| format!("?{q}")).unwrap_or_default()
}

fn paged(page: PageArgs, mut pairs: Vec<(&str, Option<String>)>) -> String {
    pairs.push(("page_size", page.page_size.map(|n| n.to_string())));
    pairs.push(("page_token", page.page_token));
    query(&pairs)
}

const APP_COLUMNS: &[&str] = &["id", "app_type", "name", "callback_url", "connector_id", "paused"];
const SUBSCRIPTION_COLUMNS: &[&str] = &["event_type", "description"];
const DELIVERY_COLUMNS: &[&str] =
    &["id", "event_type", "status", "attempts", "last_status_code", "last_error", "created_at"];
const EVENT_COLUMNS: &[&str] = &["id", "event_type", "coze_account_id", "connector_ids", "created_at"];

/// What a command does: one HTTP call, or `event publish`, which has its own client code.
enum Action {
    Http(Call),
    Publish(EventArgs),
}

fn action(command: AdminCommand) -> Action {
    use Method as M;
    let call = match command {
        AdminCommand::Account(AccountCommand::Create { name, edition }) => admin(
            M::POST,
            "/admin/v1/accounts".into(),
            Some(json!({"name": name, "edition": edition})),
            Shape::Object,
        ),
        AdminCommand::User(UserCommand::Create { account, name, role, plugin_developer }) => {
            let mut body = json!({"name": name, "plugin_developer": plugin_developer});
            if let Some(role) = role {
                body["role"] = json!(role);
            }
            admin(M::POST, format!("/admin/v1/accounts/{account}/users"), Some(body), Shape::Object)
        }
        AdminCommand::Token(TokenCommand::Create { user, name, permissions, expires_in }) => {
            let mut body = json!({});
            if let Some(name) = name {
                body["name"] = json!(name);
            }
            if !permissions.is_empty() {
                body["permissions"] = json!(permissions);
            }
            if let Some(lifetime) = expires_in {
                body["expires_in"] = json!(lifetime.as_secs());
            }
            admin(M::POST, format!("/admin/v1/users/{user}/tokens"), Some(body), Shape::Object)
        }
        AdminCommand::Token(TokenCommand::Revoke { token_id }) => {
            let done = Shape::Done(format!("token {token_id} revoked"));
            admin(M::DELETE, format!("/admin/v1/tokens/{token_id}"), None, done)
        }
        AdminCommand::Connector(ConnectorCommand::Create { user, name }) => admin(
            M::POST,
            format!("/admin/v1/users/{user}/connectors"),
            Some(json!({"name": name})),
            Shape::Object,
        ),
        AdminCommand::Connector(ConnectorCommand::Review { connector_id, bot_id }) => admin(
            M::GET,
            format!("/admin/v1/connectors/{connector_id}/bots/{bot_id}/review"),
            None,
            Shape::Object,
        ),
        AdminCommand::App(command) => app_call(command),
        AdminCommand::Delivery(command) => delivery_call(command),
        AdminCommand::Limits(LimitsCommand::Show { app_id }) => {
            admin(M::GET, format!("/admin/v1/api_apps/{app_id}/limits"), None, Shape::Object)
        }
        AdminCommand::Limits(LimitsCommand::Set { app_id, max_per_second, no_cap: _ }) => admin(
            M::PUT,
            format!("/admin/v1/api_apps/{app_id}/limits"),
            Some(json!({"max_per_second": max_per_second})),
            Shape::Object,
        ),
        AdminCommand::Event(AdminEventCommand::Publish(event)) => return Action::Publish(event),
        AdminCommand::Event(AdminEventCommand::Show { event_id }) => {
            admin(M::GET, format!("/admin/v1/events/{event_id}"), None, Shape::Object)
        }
        AdminCommand::Event(AdminEventCommand::List { event_type, account, since, until, page }) => {
            let filters = vec![
                ("event_type", event_type),
                ("coze_account_id", account),
                ("since", since.map(|ms| ms.to_string())),
                ("until", until.map(|ms| ms.to_string())),
            ];
            admin(
                M::GET,
                format!("/admin/v1/events{}", paged(page, filters)),
                None,
                Shape::List(EVENT_COLUMNS),
            )
        }
    };
    Action::Http(call)
}

fn app_call(command: AppCommand) -> Call {
    use Method as M;
    match command {
        AppCommand::List { app_type, page } => {
            let path = format!("/v1/api_apps{}", paged(page, vec![("app_type", app_type)]));
            owner(M::GET, path, None, Shape::List(APP_COLUMNS))
        }
        AppCommand::Create { name, connector } => {
            let body = match connector {
                Some(connector) => json!({"app_type": "connector", "connector_id": connector}),
                None => json!({"app_type": "normal", "name": name}),
            };
            owner(M::POST, "/v1/api_apps".into(), Some(body), Shape::Object)
        }
        AppCommand::Update { app_id, name, callback_url } => {
            let mut body = json!({});
            if let Some(name) = name {
                body["name"] = json!(name);
            }
            if let Some(url) = callback_url {
                body["callback_url"] = json!(url);
            }
            let done = Shape::Done(format!("api_app {app_id} updated"));
            owner(M::PUT, format!("/v1/api_apps/{app_id}"), Some(body), done)
        }
        AppCommand::Delete { app_id } => {
            let done = Shape::Done(format!("api_app {app_id} deleted"));
            owner(M::DELETE, format!("/v1/api_apps/{app_id}"), None, done)
        }
        AppCommand::Subscribe { app_id, event_types } => {
            let done = Shape::Done(format!("api_app {app_id} subscribed to {}", event_types.join(", ")));
            let body = Some(json!({"event_types": event_types}));
            owner(M::POST, format!("/v1/api_apps/{app_id}/events"), body, done)
        }
        AppCommand::Unsubscribe { app_id, event_types } => {
            let done = Shape::Done(format!("api_app {app_id} unsubscribed from {}", event_types.join(", ")));
            let body = Some(json!({"event_types": event_types}));
            owner(M::DELETE, format!("/v1/api_apps/{app_id}/events"), body, done)
        }
        AppCommand::Events { app_id, page } => {
            let path = format!("/v1/api_apps/{app_id}/events{}", paged(page, vec![]));
            owner(M::GET, path, None, Shape::List(SUBSCRIPTION_COLUMNS))
        }
        AppCommand::Pause { app_id, reason } => {
            let body = Some(json!({"reason": reason}));
            admin(M::POST, format!("/admin/v1/api_apps/{app_id}/pause"), body, Shape::Object)
        }
        AppCommand::Resume { app_id } => {
            admin(M::POST, format!("/admin/v1/api_apps/{app_id}/resume"), None, Shape::Object)
        }
        AppCommand::TestEvent { app_id, event_type } => {
            let body = Some(json!({"event_type": event_type}));
            admin(M::POST, format!("/admin/v1/api_apps/{app_id}/test_event"), body, Shape::Object)
        }
        AppCommand::Stats { app_id, since, until } => {
            let window = query(&[
                ("since", since.map(|ms| ms.to_string())),
                ("until", until.map(|ms| ms.to_string())),
            ]);
            admin(M::GET, format!("/admin/v1/api_apps/{app_id}/stats{window}"), None, Shape::Object)
        }
    }
}

fn delivery_call(command: DeliveryCommand) -> Call {
    use Method as M;
    match command {
        DeliveryCommand::List { app, status, event_type, page } => {
            let filters = vec![("status", status), ("event_type", event_type)];
            let path = format!("/v1/api_apps/{app}/deliveries{}", paged(page, filters));
            owner(M::GET, path, None, Shape::List(DELIVERY_COLUMNS))
        }
        DeliveryCommand::Show { app, delivery_id } => {
            owner(M::GET, format!("/v1/api_apps/{app}/deliveries/{delivery_id}"), None, Shape::Object)
        }
        DeliveryCommand::Resend { app, delivery_id } => {
            let done = Shape::Done(format!("delivery {delivery_id} queued again"));
            owner(M::POST, format!("/v1/api_apps/{app}/deliveries/{delivery_id}/resend"), None, done)
        }
        DeliveryCommand::Replay { app, status, since, until, event_type } => {
            let body = json!({"status": status, "since": since, "until": until, "event_type": event_type});
            admin(M::POST, format!("/admin/v1/api_apps/{app}/deliveries/replay"), Some(body), Shape::Object)
        }
    }
}

pub async fn run(args: AdminArgs) -> Result<(), String> {
    let output = Output { json: args.json, quiet: args.quiet };
    let call = match action(args.command) {
        Action::Publish(event) => {
            output.print(&publish(&args.connection, &event).await?, &Shape::Object);
            return Ok(());
        }
        Action::Http(call) => call,
    };
    let token = if call.as_owner {
        token_from(TOKEN_ENV, args.token_file.as_deref(), "--token-file", "a personal access token (pat_…)")?
    } else {
        args.connection.admin_token()?
    };
    let data = args.connection.client().call(call.method, &call.path, &token, call.body).await?;
    output.print(&data, &call.shape);
    Ok(())
}
