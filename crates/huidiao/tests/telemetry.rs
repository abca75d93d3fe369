//! OpenTelemetry: `--otlp-endpoint` exports one trace per request, with its logid, to a real
//! OTLP/HTTP receiver on 127.0.0.1 that decodes the protobuf the server sends; a delivery's spans
//! join the trace of the request that published it, and its push carries `traceparent`.

mod common;

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use common::receiver::{Behaviour, Receiver};
use common::{Options, Server};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use reqwest::Method;
use serde_json::json;

type Exports = Arc<Mutex<Vec<ExportTraceServiceRequest>>>;

/// An OTLP/HTTP trace receiver: takes `POST /v1/traces` in protobuf, as a collector does.
async fn otlp_receiver() -> (String, Exports) {
    async fn export(State(exports): State<Exports>, headers: HeaderMap, body: Bytes) -> StatusCode {
        if headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/x-protobuf") {
            return StatusCode::UNSUPPORTED_MEDIA_TYPE;
        }
        match ExportTraceServiceRequest::decode(body) {
            Ok(request) => {
                exports.lock().unwrap().push(request);
                StatusCode::OK
            }
            Err(_) => StatusCode::BAD_REQUEST,
        }
    }
    let exports = Exports::default();
    let app = Router::new().route("/v1/traces", post(export)).with_state(exports.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, exports)
}

/// Every span of every export.
fn spans(exports: &Exports) -> Vec<Span> {
    let exports = exports.lock().unwrap();
    let resource_spans = exports.iter().flat_map(|export| &export.resource_spans);
    resource_spans.flat_map(|r| &r.scope_spans).flat_map(|scope| scope.spans.clone()).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn int(attributes: &[KeyValue], key: &str) -> Option<i64> {
    attributes.iter().find(|a| a.key == key).and_then(|a| match a.value.as_ref()?.value.as_ref()? {
        AnyValue::IntValue(n) => Some(*n),
        _ => None,
    })
}

fn text(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes.iter().find(|a| a.key == key).and_then(|a| match a.value.as_ref()?.value.as_ref()? {
        AnyValue::StringValue(text) => Some(text.clone()),
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn each_request_is_one_trace_carrying_its_logid() {
    let (collector, exports) = otlp_receiver().await;
    let options = Options { extra_args: vec!["--otlp-endpoint".into(), collector], ..Options::default() };
    let server = Server::start_with(options).await;
    let created = server
        .admin(Method::POST, "/admin/v1/accounts", Some(json!({"name": "Acme", "edition": "team"})))
        .await;
    created.ok();
    let refused = server.call(Method::GET, "/v1/api_apps", Some("pat_wrong"), None).await;
    let logids = [created.logid_header.clone().unwrap(), refused.logid_header.clone().unwrap()];
    // SIGTERM: the server sends the spans still queued before it exits.
    assert_eq!(server.stop().await.0, Some(0));

    let resources = exports.lock().unwrap().iter().flat_map(|e| e.resource_spans.clone()).collect::<Vec<_>>();
    for resource in resources.iter().map(|r| r.resource.as_ref().expect("a resource")) {
        assert_eq!(text(&resource.attributes, "service.name").as_deref(), Some("huidiao"));
    }
    let spans = spans(&exports);
    let traced: Vec<&Span> = logids.iter().map(|logid| request_span(&spans, logid)).collect();
    let exports = exports.lock().unwrap();
    let exported = format!("{exports:?}");
    assert!(
        !exported.contains(common::ADMIN_TOKEN) && !exported.contains("pat_wrong"),
        "a token was exported"
    );
    for span in &traced {
        assert!(span.parent_span_id.is_empty(), "a request span is the root of its trace");
        assert!(span.end_time_unix_nano >= span.start_time_unix_nano && span.start_time_unix_nano > 0);
    }
    assert_ne!(traced[0].trace_id, traced[1].trace_id, "each request is its own trace");
}

#[test]
fn a_bad_otlp_endpoint_fails_the_start() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_huidiao"))
        .args(["serve", "--listen", "127.0.0.1:0", "--otlp-endpoint", "grpc://127.0.0.1:4317"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("http or https"));
}

/// The request span whose logid is `logid`.
fn request_span<'a>(spans: &'a [Span], logid: &str) -> &'a Span {
    spans
        .iter()
        .find(|s| s.name == "request" && text(&s.attributes, "logid").as_deref() == Some(logid))
        .unwrap_or_else(|| panic!("no request span with logid {logid}"))
}

/// The trace id and parent span id of a W3C `traceparent` (`00-<trace>-<span>-<flags>`).
fn parse_traceparent(header: &str) -> (String, String) {
    let parts: Vec<&str> = header.split('-').collect();
    assert_eq!((parts.len(), parts[0]), (4, "00"), "a W3C traceparent: {header}");
    (parts[1].to_owned(), parts[2].to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delivery_joins_the_trace_of_the_request_that_published_it() {
    let (collector, exports) = otlp_receiver().await;
    let options = Options { extra_args: vec!["--otlp-endpoint".into(), collector], ..Options::default() };
    let server = Server::start_with(options).await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let t = server.tenant("personal", "member").await;
    let app = server.normal_app(&t.token, "traced").await;
    let path = format!("/v1/api_apps/{}", app["id"].as_str().unwrap());
    let set_url =
        server.call(Method::PUT, &path, Some(&t.token), Some(json!({"callback_url": receiver.url}))).await;
    set_url.ok();
    server.subscribe(&t.token, &app, &["bot.deleted"]).await;
    let event =
        json!({"event_type": "bot.deleted", "coze_account_id": t.account_id, "event": {"bot_id": "7"}});
    let published = server.admin(Method::POST, "/admin/v1/events", Some(event)).await;
    published.ok();
    let push = receiver.wait_for_pushes(1, std::time::Duration::from_secs(10)).await.remove(0);
    let challenge = receiver.received().into_iter().find(|r| r.challenge().is_some()).unwrap();
    server.wait_until_settled(&t.token, &app, std::time::Duration::from_secs(10)).await;
    assert_eq!(server.stop().await.0, Some(0));

    let spans = spans(&exports);
    let publish = request_span(&spans, published.logid_header.as_deref().unwrap());
    let of_delivery = |name: &str| {
        spans.iter().find(|s| s.name == name && s.trace_id == publish.trace_id).unwrap_or_else(|| {
            panic!(
                "no {name} span in the publish's trace among {:?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        })
    };
    let deliver = of_delivery("deliver");
    assert_eq!(deliver.parent_span_id, publish.span_id, "deliver is a child of the publish request");
    assert_eq!(text(&deliver.attributes, "event_id").as_deref(), push.json()["header"]["event_id"].as_str());
    for name in ["lease", "push", "record"] {
        assert_eq!(of_delivery(name).parent_span_id, deliver.span_id, "{name} is a child of deliver");
    }
    let pushed = of_delivery("push");
    assert_eq!(int(&pushed.attributes, "http.response.status_code"), Some(200), "{:?}", pushed.attributes);
    let (trace_id, parent_id) = parse_traceparent(&push.headers["traceparent"]);
    assert_eq!(
        (trace_id, parent_id),
        (hex(&publish.trace_id), hex(&pushed.span_id)),
        "the push carries its span"
    );
    assert!(of_delivery("record").end_time_unix_nano >= pushed.end_time_unix_nano);

    // The url_verification challenge belongs to the request that set the URL.
    let setting = request_span(&spans, set_url.logid_header.as_deref().unwrap());
    let (trace_id, _) = parse_traceparent(&challenge.headers["traceparent"]);
    assert_eq!(trace_id, hex(&setting.trace_id));
}

#[tokio::test]
async fn without_traces_a_push_carries_no_traceparent() {
    let server = Server::start().await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let t = server.tenant("personal", "member").await;
    server.receiving_app(&t.token, &receiver.url, &["bot.deleted"]).await;
    let event =
        json!({"event_type": "bot.deleted", "coze_account_id": t.account_id, "event": {"bot_id": "7"}});
    server.publish(event).await;
    let received = receiver.wait_for_pushes(1, std::time::Duration::from_secs(10)).await;
    assert!(received.iter().chain(&receiver.received()).all(|r| !r.headers.contains_key("traceparent")));
}
