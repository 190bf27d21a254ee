//! A front for the browser tests: a loopback server that passes every
//! request on to `serve` and answers one page of its own, which stores a
//! token in the tab's `sessionStorage` and opens the web timeline. Being
//! the same origin as the page it opens, it puts a token where the page's
//! login prompt would, which a headless browser cannot type into.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

/// Starts the front for `serve` at `upstream`; returns its base URL.
pub async fn start(upstream: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let base = format!("http://{}", listener.local_addr().expect("an address"));
    let app = Router::new()
        .route("/with-token/{token}", get(with_token))
        .fallback(pass_on)
        .with_state(upstream);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    base
}

/// Stores `token` as the page's login would, then opens the page with
/// the same fragment.
async fn with_token(Path(token): Path<String>) -> Html<String> {
    let token = serde_json::to_string(&token).expect("a JSON string");
    Html(format!(
        "<!doctype html><script>sessionStorage.setItem(\"nomad-chronicle-token\", {token});\
         location.replace(\"/ui/\" + location.hash);</script>"
    ))
}

/// Passes a GET on to `serve` with its token header, and the answer back.
async fn pass_on(State(upstream): State<String>, request: Request) -> Response {
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let mut forward = reqwest::Client::new().get(format!("{upstream}{path}"));
    if let Some(token) = request.headers().get("X-Nomad-Token") {
        forward = forward.header("X-Nomad-Token", token.as_bytes());
    }
    let Ok(answer) = forward.send().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let content_type = answer
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok());
    let body = answer.bytes().await.unwrap_or_default();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    if let Some(content_type) = content_type {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type);
    }
    response
}
