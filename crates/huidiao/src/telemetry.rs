//! Logging to standard error and, when asked for, OpenTelemetry traces over OTLP/HTTP: the
//! `tracing` spans the server already opens (one `request` span per request, carrying its
//! logid) become spans of an exported trace, so no handler knows about OpenTelemetry.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// The exporter, kept so that spans still queued are sent before the process exits.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Sends the spans still queued and stops the exporter. Call outside the async runtime:
    /// the exporter's HTTP client blocks.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider {
            if let Err(e) = provider.shutdown() {
                eprintln!("huidiao: traces not all exported: {e}");
            }
        }
    }
}

/// The collector URL of the trace signal below an OTLP base URL (OTLP/HTTP: `<base>/v1/traces`).
pub fn traces_url(base: &url::Url) -> String {
    format!("{}/v1/traces", base.as_str().trim_end_matches('/'))
}

/// Installs the global subscriber: `HUIDIAO_LOG` (else `default_level`) filters both the log
/// lines and the exported spans. Call before the async runtime starts.
pub fn init(default_level: &str, otlp_endpoint: Option<&url::Url>) -> Result<Telemetry, String> {
    let filter = EnvFilter::try_from_env("HUIDIAO_LOG").unwrap_or_else(|_| default_level.into());
    let log = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let provider = otlp_endpoint.map(provider).transpose()?;
    let traces = provider.as_ref().map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("huidiao")));
    tracing_subscriber::registry().with(filter).with(log).with(traces).init();
    Ok(Telemetry { provider })
}

/// The W3C Trace Context header a push carries.
pub const TRACEPARENT: &str = "traceparent";

/// The W3C `traceparent` of `span`, or `None` when it is not part of an exported trace (traces
/// are off, or the span is disabled).
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    if span.is_none() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&span.context(), &mut carrier);
    carrier.remove(TRACEPARENT)
}

/// Makes `span`, not yet entered, a child of the span a stored `traceparent` names. Without
/// exported traces, or with a traceparent that does not parse, the span stays a root.
pub fn continue_trace(span: &tracing::Span, traceparent: &str) {
    let carrier = HashMap::from([(TRACEPARENT.to_owned(), traceparent.to_owned())]);
    let _ = span.set_parent(TraceContextPropagator::new().extract(&carrier));
}

fn provider(endpoint: &url::Url) -> Result<SdkTracerProvider, String> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(traces_url(endpoint))
        .build()
        .map_err(|e| format!("--otlp-endpoint {endpoint}: cannot set up the exporter: {e}"))?;
    let resource = opentelemetry_sdk::Resource::builder().with_service_name("huidiao").build();
    Ok(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trace_signal_is_below_the_base_url() {
        let base = url::Url::parse("http://127.0.0.1:4318/").unwrap();
        assert_eq!(traces_url(&base), "http://127.0.0.1:4318/v1/traces");
        let prefixed = url::Url::parse("https://otel.example/collector").unwrap();
        assert_eq!(traces_url(&prefixed), "https://otel.example/collector/v1/traces");
    }
}
