//! `ingest --listen`: `/metrics` for Prometheus, `/healthz` (the process is
//! alive) and `/readyz` (subscribed and committing, or a healthy standby;
//! 503 with a one-line reason otherwise).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use super::Stats;
use crate::metrics;
use crate::store::Store;

/// How long `/readyz` waits for the database to answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
struct Endpoint {
    store: Arc<dyn Store>,
    stats: Arc<Stats>,
    registry: Arc<Registry>,
    /// The cluster's label, which the database probe looks up.
    cluster: String,
}

/// Serves the endpoints until `shutdown` fires.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Arc<dyn Store>,
    stats: Arc<Stats>,
    cluster: String,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let endpoint = Endpoint {
        registry: Arc::new(super::scrape::registry(stats.clone())),
        store,
        stats,
        cluster,
    };
    let app = Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { text(StatusCode::OK, "ok") }))
        .route("/readyz", get(readyz))
        .with_state(endpoint);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

fn text(status: StatusCode, line: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{line}\n"),
    )
        .into_response()
}

async fn metrics_text(State(endpoint): State<Endpoint>) -> Response {
    let body = metrics::encode(&endpoint.registry);
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], body).into_response()
}

async fn readyz(State(endpoint): State<Endpoint>) -> Response {
    let probe = endpoint.store.find_cluster(&endpoint.cluster);
    let database = match tokio::time::timeout(PROBE_TIMEOUT, probe).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {PROBE_TIMEOUT:?}")),
    };
    match endpoint.stats.health.readiness(database) {
        Ok(line) => text(StatusCode::OK, &line),
        Err(reason) => text(StatusCode::SERVICE_UNAVAILABLE, &reason),
    }
}
