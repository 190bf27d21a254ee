//! A front for the browser tests: a loopback server that passes every
//! request on to `serve` and answers one page of its own, which stores a
//! token in the tab's `sessionStorage` and opens the web timeline. Being
//! the same origin as the page it opens, it puts a token where the page's
//! login prompt would, which a headless browser cannot type into. Its
//! other page, `/harness`, opens the web timeline in a frame and works it
//! as a person would (a click on a bar, the wheel, a drag, a click on the
//! time axis), writing what the page did into its own DOM as JSON.

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
        .route("/harness", get(|| async { Html(HARNESS) }))
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

/// Opens `/ui/` with the harness's own fragment in a frame, waits for it,
/// then clicks a bar, zooms, drags and clicks the axis, and writes each
/// outcome into `<pre id="result">`.
const HARNESS: &str = r#"<!doctype html>
<iframe id="f" width="1200" height="700"></iframe>
<pre id="result"></pre>
<script>
const frame = document.getElementById("f");
const result = {};
const until = (check) => new Promise((done) => {
  const poll = () => (check() ? done() : setTimeout(poll, 20));
  poll();
});
const view = () => Object.fromEntries(new URLSearchParams(frame.contentWindow.location.hash.slice(1)));
async function run() {
  const win = frame.contentWindow;
  const doc = frame.contentDocument;
  await until(() => doc.body && doc.body.dataset.state === "ready");
  const svg = doc.getElementById("timeline");
  const box = svg.getBoundingClientRect();
  const bar = doc.querySelector("rect.bar");
  result.clicked = bar.getAttribute("data-alloc");
  bar.dispatchEvent(new win.MouseEvent("click", { bubbles: true }));
  await until(() => (doc.getElementById("panel-body").dataset.object || "").startsWith("alloc/"));
  result.opened = doc.getElementById("panel-body").dataset.object;
  result.before = view();
  const at = { clientX: box.left + 600, clientY: box.top + 60, bubbles: true, cancelable: true };
  svg.dispatchEvent(new win.WheelEvent("wheel", { ...at, deltaY: -400 }));
  result.zoomed = view();
  const lane = doc.querySelector("rect.lane-bg");
  lane.dispatchEvent(new win.MouseEvent("mousedown", { ...at, clientX: box.left + 600 }));
  win.dispatchEvent(new win.MouseEvent("mousemove", { ...at, clientX: box.left + 400 }));
  win.dispatchEvent(new win.MouseEvent("mouseup", { ...at, clientX: box.left + 400 }));
  await until(() => view().from !== result.zoomed.from);
  result.panned = view();
  const axis = doc.getElementById("axis");
  axis.dispatchEvent(new win.MouseEvent("click", { clientX: box.left + 500, clientY: box.top + 10, bubbles: true }));
  await until(() => doc.getElementById("panel-body").dataset.snapshot);
  result.cursor = doc.getElementById("panel-body").dataset.snapshot;
  result.rows = doc.querySelectorAll("tr.snapshot-row").length;
  result.error = !!doc.getElementById("error");
  document.getElementById("result").textContent = JSON.stringify(result);
}
frame.src = "/ui/" + location.hash;
frame.addEventListener("load", () => run().catch((e) => {
  document.getElementById("result").textContent = JSON.stringify({ failed: String(e) });
}));
</script>"#;
