//! A property of the whole HTTP surface: whatever sequence of requests clients send — real paths
//! with real and made-up ids, every method, random query strings, tokens, content types and
//! bodies (valid, random or malformed JSON, random bytes) — the server never answers 5xx or code
//! 5000, and every answer is the envelope with the HTTP status its code maps to. Only a `GET` of
//! `/metrics`, `/openapi.json` or a console file answers something else, and `HEAD` no body.

mod common;

use std::collections::BTreeSet;
use std::sync::Mutex;

use common::{Options, Server, ADMIN_TOKEN, EVENT_TYPES};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};

/// Random cases, each a sequence of up to `MAX_REQUESTS` requests on the same server.
const CASES: u32 = 256;
const MAX_REQUESTS: usize = 12;

/// Every path of the API (docs/api.md), with `{app}` and `{id}` filled by [`path_id`].
const PATHS: &[&str] = &[
    "/v1/api_apps",
    "/v1/api_apps/{app}",
    "/v1/api_apps/{app}/events",
    "/v1/api_apps/{app}/deliveries",
    "/v1/api_apps/{app}/deliveries/{id}",
    "/v1/api_apps/{app}/deliveries/{id}/resend",
    "/admin/v1/accounts",
    "/admin/v1/accounts/{id}/users",
    "/admin/v1/users/{id}/tokens",
    "/admin/v1/tokens/{id}",
    "/admin/v1/users/{id}/connectors",
    "/admin/v1/events",
    "/admin/v1/events:batch",
    "/admin/v1/api_apps/{app}/limits",
    "/v1/connectors/{id}/bots/{app}",
    "/admin/v1/connectors/{id}/bots/{app}/review",
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/console",
    "/console/{id}",
];

/// Every field name the request bodies know.
const FIELDS: &[&str] = &[
    "app_type",
    "name",
    "connector_id",
    "callback_url",
    "event_types",
    "edition",
    "role",
    "permissions",
    "expires_in",
    "event_type",
    "coze_account_id",
    "max_per_second",
    "connector_ids",
    "event",
    "created_at",
    "events",
    "audit_status",
    "reason",
];

/// Values those fields take, besides random ones. Callback URLs are refused by the rules or by
/// a closed loopback port, so no case waits for a network.
const WORDS: &[&str] = &[
    "normal",
    "connector",
    "personal",
    "team",
    "enterprise",
    "member",
    "admin",
    "super_admin",
    "createApiApp",
    "listApiApp",
    "updateApiApp",
    "deleteApiApp",
    "subscribeApiAppEvent",
    "unsubscribeApiAppEvent",
    "http://127.0.0.1:1/cb",
    "ftp://example.com/",
    "https://user:pw@example.com/",
    "http://[::1",
    "",
    " ",
];

const METHODS: &[Method] =
    &[Method::GET, Method::POST, Method::PUT, Method::DELETE, Method::PATCH, Method::HEAD, Method::OPTIONS];

/// What the fixed part of the server holds: one tenant with an app subscribed to every type,
/// a connector and a delivery, and a member of a team account (whose token is refused 4101).
struct Fixture {
    server: Server,
    tenant_token: String,
    member_token: String,
    ids: Vec<String>,
}

#[derive(Debug, Clone)]
enum Auth {
    None,
    Tenant,
    Member,
    Admin,
    Header(String),
}

#[derive(Debug, Clone)]
enum Body {
    Empty,
    Json(Value),
    Raw(Vec<u8>),
}

#[derive(Debug, Clone)]
struct Request {
    method: Method,
    path: String,
    query: String,
    auth: Auth,
    content_type: Option<String>,
    body: Body,
}

/// Ids that name nothing: zero, negative, too large, not numbers, not UTF-8 once decoded.
const ODD_IDS: &[&str] =
    &["0", "-1", "9223372036854775807", "99999999999999999999", "1e3", "%ff", "%C3%28", "%2F", "%20"];

fn path_id(ids: &[String]) -> BoxedStrategy<String> {
    prop_oneof![
        3 => select(ids.to_vec()),
        1 => select(ODD_IDS).prop_map(String::from),
        1 => "[0-9]{1,20}",
        1 => "[A-Za-z0-9._~%:-]{0,20}",
    ]
    .boxed()
}

fn path(ids: &[String]) -> BoxedStrategy<String> {
    prop_oneof![
        8 => (select(PATHS), path_id(ids), path_id(ids))
            .prop_map(|(template, app, id)| template.replace("{app}", &app).replace("{id}", &id)),
        1 => "/[A-Za-z0-9/._:%-]{0,30}",
    ]
    .boxed()
}

fn query() -> BoxedStrategy<String> {
    let name = select(vec!["page_size", "page_token", "app_type", "status", "event_type", "x"]);
    let value = prop_oneof![
        select(vec!["10", "0", "51", "-1", "normal", "pending", "succeeded", "bot.published", ""])
            .prop_map(String::from),
        "\\PC{0,16}",
    ];
    let pairs = vec((name, value), 0..4).prop_map(|pairs| {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.extend_pairs(pairs);
        query.finish()
    });
    prop_oneof![4 => pairs, 1 => "[ -~]{0,24}"].boxed()
}

fn auth() -> BoxedStrategy<Auth> {
    prop_oneof![
        1 => Just(Auth::None),
        4 => Just(Auth::Tenant),
        1 => Just(Auth::Member),
        3 => Just(Auth::Admin),
        1 => "pat_[A-Za-z0-9]{0,70}".prop_map(|t| Auth::Header(format!("Bearer {t}"))),
        1 => "[ -~]{0,40}".prop_map(Auth::Header),
    ]
    .boxed()
}

fn content_type() -> BoxedStrategy<Option<String>> {
    prop_oneof![
        4 => Just(Some("application/json".to_owned())),
        1 => Just(None),
        1 => select(vec!["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
            .prop_map(|t| Some(t.to_owned())),
        1 => "[a-z/+;= -]{0,24}".prop_map(Some),
    ]
    .boxed()
}

fn json_value(ids: &[String]) -> BoxedStrategy<Value> {
    let words: Vec<String> =
        WORDS.iter().chain(EVENT_TYPES.iter()).map(|w| w.to_string()).chain(ids.iter().cloned()).collect();
    let leaf = prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => (-1e3f64..1e20).prop_map(Value::from),
        3 => select(words).prop_map(Value::from),
        2 => "\\PC{0,24}".prop_map(Value::from),
        1 => "[\\x00-\\x1f\u{7f}\u{ff}-\u{10ffff}]{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            btree_map(select(FIELDS).prop_map(String::from), inner, 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>())),
        ]
    })
    .boxed()
}

/// Bodies shaped like the API's (objects of its fields), any JSON, broken JSON, or bytes.
fn body(ids: &[String]) -> BoxedStrategy<Body> {
    let object = btree_map(select(FIELDS).prop_map(String::from), json_value(ids), 0..5)
        .prop_map(|fields| Body::Json(Value::Object(fields.into_iter().collect())));
    let truncated = (json_value(ids), any::<prop::sample::Index>()).prop_map(|(value, cut)| {
        let text = value.to_string().into_bytes();
        Body::Raw(text[..cut.index(text.len())].to_vec())
    });
    prop_oneof![
        2 => Just(Body::Empty),
        5 => object,
        2 => json_value(ids).prop_map(Body::Json),
        1 => truncated,
        1 => vec(any::<u8>(), 0..64).prop_map(Body::Raw),
    ]
    .boxed()
}

fn request(ids: &[String]) -> BoxedStrategy<Request> {
    (select(METHODS), path(ids), query(), auth(), content_type(), body(ids))
        .prop_map(|(method, path, query, auth, content_type, body)| Request {
            method,
            path,
            query,
            auth,
            content_type,
            body,
        })
        .boxed()
}

/// Answers that are not the envelope by design: the metrics text, the OpenAPI document and the
/// console's files, on a successful `GET`.
fn exempt(request: &Request, status: StatusCode) -> bool {
    request.method == Method::GET
        && status == StatusCode::OK
        && (request.path == "/metrics"
            || request.path == "/openapi.json"
            || request.path.starts_with("/console"))
}

/// The HTTP statuses each code may answer with (docs/api.md, the table of codes).
fn statuses(code: i64) -> &'static [u16] {
    match code {
        0 => &[200],
        4000 => &[400, 405, 413],
        4100 => &[401],
        4101 => &[403],
        4200 => &[404],
        4013 => &[429],
        _ => &[],
    }
}

impl Fixture {
    async fn start() -> Fixture {
        // Off, so that rate limiting does not turn most answers into 4013.
        let extra_args = ["--rate-limit-per-token", "0"].map(String::from).to_vec();
        let server = Server::start_with(Options { extra_args, ..Default::default() }).await;
        let tenant = server.subscriber().await;
        let member = server.tenant("team", "member").await;
        let app = server.normal_app(&tenant.token, "fixture").await;
        server.subscribe(&tenant.token, &app, &EVENT_TYPES).await;
        server
            .publish(json!({"event_type": "bot.deleted", "coze_account_id": tenant.account_id, "event": {}}))
            .await;
        let delivery = server.deliveries(&tenant.token, &app, "").await[0]["id"].as_str().unwrap().to_owned();
        let connector = server.connector(&tenant.user_id, "channel").await;
        let ids = vec![
            app["id"].as_str().unwrap().to_owned(),
            tenant.account_id,
            tenant.user_id,
            member.user_id,
            connector,
            delivery,
        ];
        Fixture { server, tenant_token: tenant.token, member_token: member.token, ids }
    }

    /// Sends one request and checks the answer; answers its code, if it has one.
    async fn check(&self, http: &reqwest::Client, request: &Request) -> Result<Option<i64>, TestCaseError> {
        let mut url = format!("{}{}", self.server.base, request.path);
        if !request.query.is_empty() {
            url = format!("{url}?{}", request.query);
        }
        let mut builder = http.request(request.method.clone(), &url);
        let authorization = match &request.auth {
            Auth::None => None,
            Auth::Tenant => Some(format!("Bearer {}", self.tenant_token)),
            Auth::Member => Some(format!("Bearer {}", self.member_token)),
            Auth::Admin => Some(format!("Bearer {ADMIN_TOKEN}")),
            Auth::Header(value) => Some(value.clone()),
        };
        if let Some(value) = authorization {
            builder = builder.header(AUTHORIZATION, value);
        }
        if let Some(value) = &request.content_type {
            builder = builder.header(CONTENT_TYPE, value);
        }
        builder = match &request.body {
            Body::Empty => builder,
            Body::Json(value) => builder.body(value.to_string()),
            Body::Raw(bytes) => builder.body(bytes.clone()),
        };
        let response = builder.send().await.map_err(|e| TestCaseError::fail(format!("no answer: {e}")))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| TestCaseError::fail(format!("no body: {e}")))?;
        prop_assert!(!status.is_server_error(), "HTTP {status}: {text}");
        if request.method == Method::HEAD || exempt(request, status) {
            return Ok(None);
        }
        let body: Value = serde_json::from_str(&text)
            .map_err(|_| TestCaseError::fail(format!("not JSON (HTTP {status}): {text:?}")))?;
        let code = body["code"].as_i64();
        prop_assert!(code.is_some_and(|c| c != 5000), "code: {body}");
        let code = code.unwrap_or_default();
        prop_assert!(body["msg"].is_string(), "msg: {body}");
        prop_assert!(body["detail"]["logid"].is_string(), "logid: {body}");
        prop_assert!(statuses(code).contains(&status.as_u16()), "code {code} with HTTP {status}: {body}");
        Ok(Some(code))
    }
}

#[test]
fn random_request_sequences_never_fail_the_server() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let fixture = runtime.block_on(Fixture::start());
    let http = reqwest::Client::new();
    let codes = Mutex::new(BTreeSet::new());
    let config = Config { cases: CASES, failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new(config);
    let sequences = vec(request(&fixture.ids), 1..=MAX_REQUESTS);
    let outcome = runner.run(&sequences, |requests| {
        runtime.block_on(async {
            for request in &requests {
                let code = fixture.check(&http, request).await?;
                codes.lock().unwrap().extend(code);
            }
            Ok(())
        })
    });
    if let Err(failure) = outcome {
        let log = fixture.server.log_text();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        panic!("{failure}\nthe end of the server's log:\n{tail}");
    }
    let codes = codes.into_inner().unwrap();
    for expected in [0, 4000, 4100, 4101, 4200] {
        assert!(
            codes.contains(&expected),
            "no answer had code {expected}: the requests miss the API ({codes:?})"
        );
    }
    assert!(!fixture.server.log_text().contains("panicked"));
}
