//! The server's HTTP API as the benchmark uses it: the operator sets up tenants and publishes
//! (admin token), a developer sets up apps (PAT). Every answer is checked for code 0.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::events::EVENT_TYPE;
use crate::Error;

/// An account with one user and a PAT of that user.
#[derive(Clone)]
pub struct Tenant {
    pub account_id: String,
    pub pat: String,
}

/// A request the server answered with a non-zero code.
#[derive(Debug)]
pub struct Refusal {
    pub path: String,
    /// The envelope's `code` (-1 when it had none).
    pub code: i64,
    pub envelope: Value,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.envelope)
    }
}

impl std::error::Error for Refusal {}

/// The API of every node of the server; requests go to the nodes in turn, as behind a load
/// balancer.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base_urls: Arc<Vec<String>>,
    turn: Arc<AtomicUsize>,
    admin_token: String,
}

impl Api {
    pub fn new(base_urls: &[String], admin_token: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("a static client configuration is valid");
        Api {
            http,
            base_urls: Arc::new(base_urls.to_vec()),
            turn: Arc::default(),
            admin_token: admin_token.to_owned(),
        }
    }

    /// The node whose turn it is.
    fn base_url(&self) -> &str {
        &self.base_urls[self.turn.fetch_add(1, Ordering::Relaxed) % self.base_urls.len()]
    }

    /// Sends one request and answers its envelope's `data`, or the server's refusal (a non-zero
    /// code); the outer error is a request that got no envelope back.
    async fn answer(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> Result<Result<Value, Refusal>, Error> {
        let mut request = self.http.request(method, format!("{}{path}", self.base_url())).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let mut envelope: Value = request.send().await?.json().await?;
        match envelope["code"].as_i64() {
            Some(0) => Ok(Ok(envelope["data"].take())),
            code => Ok(Err(Refusal { path: path.to_owned(), code: code.unwrap_or(-1), envelope })),
        }
    }

    /// Sends one request and answers its envelope's `data`; a non-zero code is an error.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> Result<Value, Error> {
        Ok(self.answer(method, path, token, body).await??)
    }

    fn id(data: &Value, path: &str) -> Result<String, Error> {
        data["id"].as_str().map(str::to_owned).ok_or_else(|| format!("{path}: no id in {data}").into())
    }

    /// A team account (`benefit.usage` needs a paid edition), its admin, and a PAT with every
    /// permission.
    pub async fn tenant(&self, name: &str) -> Result<Tenant, Error> {
        let admin = &self.admin_token;
        let account = self
            .call(
                reqwest::Method::POST,
                "/admin/v1/accounts",
                admin,
                Some(&json!({"name": name, "edition": "team"})),
            )
            .await?;
        let account_id = Self::id(&account, "accounts")?;
        let path = format!("/admin/v1/accounts/{account_id}/users");
        let user = self
            .call(reqwest::Method::POST, &path, admin, Some(&json!({"name": name, "role": "admin"})))
            .await?;
        let user_id = Self::id(&user, "users")?;
        let path = format!("/admin/v1/users/{user_id}/tokens");
        let token = self.call(reqwest::Method::POST, &path, admin, Some(&json!({}))).await?;
        let pat = token["token"].as_str().ok_or("no token in the answer")?.to_owned();
        Ok(Tenant { account_id, pat })
    }

    /// `POST /v1/api_apps`: a normal app; answers its id.
    pub async fn create_app(&self, tenant: &Tenant, name: &str) -> Result<String, Error> {
        let body = json!({"app_type": "normal", "name": name});
        let app = self.call(reqwest::Method::POST, "/v1/api_apps", &tenant.pat, Some(&body)).await?;
        Self::id(&app, "api_apps")
    }

    /// `GET /v1/api_apps?page_size=20`: the first page of the tenant's apps.
    pub async fn list_apps(&self, tenant: &Tenant) -> Result<(), Error> {
        self.call(reqwest::Method::GET, "/v1/api_apps?page_size=20", &tenant.pat, None).await?;
        Ok(())
    }

    /// A normal app with `callback_url` (which the server verifies with a challenge) subscribed
    /// to `benefit.usage`; answers its id.
    pub async fn app(&self, tenant: &Tenant, name: &str, callback_url: &str) -> Result<String, Error> {
        let id = self.create_app(tenant, name).await?;
        let path = format!("/v1/api_apps/{id}");
        self.call(reqwest::Method::PUT, &path, &tenant.pat, Some(&json!({"callback_url": callback_url})))
            .await?;
        let path = format!("/v1/api_apps/{id}/events");
        self.call(reqwest::Method::POST, &path, &tenant.pat, Some(&json!({"event_types": [EVENT_TYPE]})))
            .await?;
        Ok(id)
    }

    /// `POST /admin/v1/events:batch`; answers how many deliveries were queued.
    pub async fn publish(&self, events: &[Value]) -> Result<u64, Error> {
        let body = json!({ "events": events });
        let data = self
            .call(reqwest::Method::POST, "/admin/v1/events:batch", &self.admin_token, Some(&body))
            .await?;
        data["deliveries"].as_u64().ok_or_else(|| format!("events:batch: no deliveries in {data}").into())
    }

    /// `POST /admin/v1/events`: one event; answers how many deliveries were queued.
    pub async fn publish_one(&self, event: &Value) -> Result<u64, Error> {
        Ok(self.try_publish_one(event).await??)
    }

    /// `POST /admin/v1/events`, keeping a refusal (e.g. 4013, rate-limited) apart from a request
    /// that got no answer, so a load can count refusals and go on.
    pub async fn try_publish_one(&self, event: &Value) -> Result<Result<u64, Refusal>, Error> {
        let answer =
            self.answer(reqwest::Method::POST, "/admin/v1/events", &self.admin_token, Some(event)).await?;
        match answer {
            Ok(data) => data["deliveries"]
                .as_u64()
                .map(Ok)
                .ok_or_else(|| format!("events: no deliveries in {data}").into()),
            Err(refusal) => Ok(Err(refusal)),
        }
    }

    /// A sample of `/metrics` summed over the nodes, e.g.
    /// `huidiao_deliveries_total{outcome="retried"}`; 0 when absent.
    pub async fn metric(&self, sample: &str) -> Result<f64, Error> {
        let mut total = 0.0;
        for base_url in self.base_urls.iter() {
            let text = self.http.get(format!("{base_url}/metrics")).send().await?.text().await?;
            total += text
                .lines()
                .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' ')?.trim().parse::<f64>().ok())
                .unwrap_or(0.0);
        }
        Ok(total)
    }
}
