//! A small REST client for tests: bearer token, YAML bodies, JSON answers.

use reqwest::StatusCode;
use serde_json::Value;

#[derive(Clone)]
pub struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Client {
    /// `base` like `http://127.0.0.1:5681`.
    pub fn new(base: impl Into<String>, token: impl Into<String>) -> Self {
        Client {
            base: base.into(),
            token: token.into(),
            http: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// The underlying client, for requests these helpers do not cover.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// An authenticated request builder.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(&self.token)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        answer(self.request(reqwest::Method::GET, path).send().await).await
    }

    /// PUT a YAML document.
    pub async fn put(&self, path: &str, yaml: &str) -> (StatusCode, Value) {
        let req = self
            .request(reqwest::Method::PUT, path)
            .header("content-type", "application/yaml")
            .body(yaml.to_string());
        answer(req.send().await).await
    }

    /// PUT Secret `name` of `mesh` holding `bytes`; the answer when it is not a
    /// success.
    pub async fn put_secret(&self, mesh: &str, name: &str, bytes: &[u8]) -> Result<(), String> {
        let doc = format!(
            "type: Secret\nmesh: {mesh}\nname: {name}\ndata: {}\n",
            weft_model::resource::secret::encode_base64(bytes)
        );
        let (s, body) = self
            .put(&format!("/meshes/{mesh}/secrets/{name}"), &doc)
            .await;
        if s.is_success() {
            Ok(())
        } else {
            Err(format!("PUT secret {name}: {s} {body}"))
        }
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        answer(self.request(reqwest::Method::DELETE, path).send().await).await
    }
}

async fn answer(r: reqwest::Result<reqwest::Response>) -> (StatusCode, Value) {
    match r {
        Ok(r) => {
            let status = r.status();
            (status, r.json().await.unwrap_or(Value::Null))
        }
        Err(e) => panic!("request failed: {e}"),
    }
}

/// The field paths of a std-errors body's `invalid_parameters`.
pub fn invalid_fields(body: &Value) -> Vec<String> {
    body["invalid_parameters"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| v["field"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}
