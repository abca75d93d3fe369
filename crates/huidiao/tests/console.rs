//! The web console is served from the binary: HTML and assets with their content types and a
//! Content-Security-Policy, and the envelope's 404 for a file it does not have. (What the
//! console does in a browser is tested in tests/browser/ at the repository root.)

mod common;

use common::Server;

#[tokio::test]
async fn the_console_is_served_with_a_content_security_policy() {
    let server = Server::start().await;
    let http = reqwest::Client::new();
    for (path, content_type) in [
        ("/console", "text/html; charset=utf-8"),
        ("/console/", "text/html; charset=utf-8"),
        ("/console/app.js", "text/javascript; charset=utf-8"),
        ("/console/style.css", "text/css; charset=utf-8"),
        ("/console/favicon.svg", "image/svg+xml"),
    ] {
        let response = http.get(format!("{}{path}", server.base)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers();
        assert_eq!(headers["content-type"], content_type, "{path}");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.starts_with("default-src 'self'"), "{path}: {csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert!(!response.bytes().await.unwrap().is_empty(), "{path}");
    }
    let html = http.get(format!("{}/console", server.base)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains(r#"<script type="module" src="/console/app.js">"#), "{html}");
}

#[tokio::test]
async fn an_unknown_console_file_is_a_404_envelope() {
    let server = Server::start().await;
    // Only the embedded files exist: nothing is read from disk, so no path can reach other files.
    for path in ["/console/nope.js", "/console/app.js/x", "/console/index.htm", "/console/Cargo.toml"] {
        let answer = server.call(reqwest::Method::GET, path, None, None).await;
        assert_eq!(answer.status, 404, "{path}");
        assert_eq!(answer.body["code"], 4200, "{path}");
        assert!(answer.body["msg"].as_str().unwrap().contains("console"), "{path}: {}", answer.body);
        assert!(answer.body["detail"]["logid"].is_string(), "{path}");
    }
}
