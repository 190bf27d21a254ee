//! The JSON API the web timeline reads, under `/api/v1/`: the clusters,
//! the lanes of a time window ([`super::lanes`]), a snapshot and an
//! object's timeline exactly as `query snapshot|alloc|job|… --output json`
//! write them (the same code writes both, into a [`Capped`] buffer, so an
//! answer is held in memory only up to [`MAX_ANSWER`] bytes).
//!
//! Every route only reads. Every answer has PascalCase keys, as the CLI's
//! JSON does (docs/json.md). Errors are `{"Error": "…"}` with 400 (a bad
//! parameter), 404 (nothing found), 413 (the answer is too large) or 500.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::capped::Capped;
use super::lanes::{self, By, MAX_WIDTH, MIN_WIDTH};
use super::window::{self, Way, Window};
use crate::archive::Cluster;
use crate::query::QueryError;
use crate::query::render::{Look, Output};
use crate::query::snapshot::{self, SnapshotQuery};
use crate::query::state::At;
use crate::query::timeline::{self, Subject, TimelineQuery};
use crate::store::Store;

/// The largest snapshot or object timeline one answer holds.
pub const MAX_ANSWER: usize = 32 << 20;

/// Events an object's timeline reads unless `limit` says otherwise (the
/// CLI's default).
const OBJECT_LIMIT: u32 = 10_000;

/// Terminal allocations a snapshot shows unless `terminal-within` or `all`
/// says otherwise (the CLI's default, one hour).
const TERMINAL_WITHIN_MS: i64 = 3_600_000;

/// What every API route reads.
#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<dyn Store>,
    /// The label of the cluster `serve` serves.
    pub cluster: String,
}

type Params = Query<HashMap<String, String>>;

/// The API's routes; the caller puts them behind its token check.
pub fn api_routes(state: ApiState) -> Router {
    Router::new()
        .route("/api/v1/clusters", get(clusters))
        .route("/api/v1/timeline", get(lanes))
        .route("/api/v1/snapshot", get(snapshot))
        .route("/api/v1/object/{kind}/{id}", get(object))
        .with_state(state)
}

/// A JSON body with its status.
fn json(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// A request that cannot be answered: its status and why, written as
/// `{"Error": message}`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "Error": self.message }).to_string();
        json(self.status, body.into_bytes())
    }
}

type Answer = Result<Response, ApiError>;

/// How a query's failure is answered.
fn failed(e: QueryError, written: &Capped) -> ApiError {
    match e {
        QueryError::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, m),
        QueryError::Ambiguous(m) | QueryError::Usage(m) => ApiError::bad(m),
        QueryError::Output(_) if written.overflowed => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the answer is larger than {} MiB; narrow it (a job, a node, a shorter window)",
                MAX_ANSWER >> 20
            ),
        ),
        e => {
            tracing::warn!(error = %e, "Cannot answer an API request");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the archive cannot be read",
            )
        }
    }
}

/// The served cluster, or the answer saying why there is none.
async fn served(state: &ApiState) -> Result<Cluster, ApiError> {
    match state.store.find_cluster(&state.cluster).await {
        Ok(Some(cluster)) => Ok(cluster),
        Ok(None) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "the archive holds no such cluster",
        )),
        Err(e) => Err(failed(e.into(), &Capped::new(0))),
    }
}

async fn clusters(State(state): State<ApiState>) -> Answer {
    let names = state
        .store
        .cluster_names()
        .await
        .map_err(|e| failed(e.into(), &Capped::new(0)))?;
    let body = serde_json::json!({ "Clusters": names, "Served": state.cluster });
    Ok(json(StatusCode::OK, body.to_string().into_bytes()))
}

/// Parses a time: Unix milliseconds or RFC 3339.
pub fn parse_time(name: &str, value: &str) -> Result<i64, String> {
    if let Ok(ms) = value.parse::<i64>() {
        return Ok(ms);
    }
    value
        .parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|_| {
            format!(
                "`{name}` is `{value}`: give Unix milliseconds or RFC 3339 (2026-12-04T17:41:30Z)"
            )
        })
}

fn time_param(params: &HashMap<String, String>, name: &str) -> Result<Option<i64>, ApiError> {
    params
        .get(name)
        .filter(|v| !v.is_empty())
        .map(|v| parse_time(name, v))
        .transpose()
        .map_err(ApiError::bad)
}

async fn lanes(State(state): State<ApiState>, Query(params): Params) -> Answer {
    let by = match params.get("by").map(String::as_str) {
        None | Some("" | "job") => By::Job,
        Some("node") => By::Node,
        Some(other) => {
            return Err(ApiError::bad(format!(
                "`by` is `{other}`: use `job` or `node`"
            )));
        }
    };
    let width = match params.get("width").filter(|w| !w.is_empty()) {
        None => 0,
        Some(w) => w
            .parse::<u32>()
            .ok()
            .filter(|w| (MIN_WIDTH..=MAX_WIDTH).contains(w))
            .ok_or_else(|| {
                ApiError::bad(format!(
                    "`width` is `{w}`: give the time axis's pixels, {MIN_WIDTH} to {MAX_WIDTH}"
                ))
            })?,
    };
    let from = time_param(&params, "from")?;
    let to = time_param(&params, "to")?;
    let cluster = served(&state).await?;
    let window = Window {
        by,
        from,
        to,
        width,
        way: Way::Lives,
    };
    let lanes = window::lanes(state.store.as_ref(), &cluster, window)
        .await
        .map_err(|e| failed(e, &Capped::new(0)))?;
    let body = lanes::json::to_vec(&lanes)
        .map_err(|e| failed(QueryError::Output(e.into()), &Capped::new(0)))?;
    Ok(json(StatusCode::OK, body))
}

/// The snapshot a request asks for, as `query snapshot` takes it.
fn snapshot_query(params: &HashMap<String, String>) -> Result<SnapshotQuery, ApiError> {
    let bad = ApiError::bad;
    let at = match (params.get("at-index"), time_param(params, "at")?) {
        (Some(index), _) => At::Index(
            index
                .parse()
                .map_err(|_| bad(format!("`at-index` is `{index}`: give a raft index")))?,
        ),
        (None, Some(time)) => At::Time(time),
        (None, None) => return Err(bad("give `at-index` or `at`".to_owned())),
    };
    let terminal_within = match (
        params.get("all").map(String::as_str),
        params.get("terminal-within"),
    ) {
        (Some("true" | "1"), _) => None,
        (_, Some(window)) => Some(
            humantime::parse_duration(window)
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                .map_err(|_| {
                    bad(format!(
                        "`terminal-within` is `{window}`: use e.g. 30m, 1h or 2d"
                    ))
                })?,
        ),
        _ => Some(TERMINAL_WITHIN_MS),
    };
    Ok(SnapshotQuery {
        at,
        job: params.get("job").filter(|v| !v.is_empty()).cloned(),
        node: params.get("node").filter(|v| !v.is_empty()).cloned(),
        terminal_within,
    })
}

async fn snapshot(State(state): State<ApiState>, Query(params): Params) -> Answer {
    let query = snapshot_query(&params)?;
    let cluster = served(&state).await?;
    let mut out = Capped::new(MAX_ANSWER);
    let store = state.store.as_ref();
    match snapshot::run(
        store,
        &cluster,
        &query,
        Output::Json,
        &mut out,
        &Look::default(),
    )
    .await
    {
        Ok(()) => Ok(json(StatusCode::OK, out.bytes)),
        Err(e) => Err(failed(e, &out)),
    }
}

/// The object timeline a request asks for, as `query alloc|job|…` takes it.
fn object_query(
    kind: &str,
    id: String,
    params: &HashMap<String, String>,
) -> Result<TimelineQuery, ApiError> {
    let subject = match kind {
        "alloc" => Subject::Alloc,
        "job" => Subject::Job,
        "node" => Subject::Node,
        "eval" => Subject::Eval,
        "deployment" => Subject::Deployment,
        other => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no object kind `{other}`: use alloc, job, node, eval or deployment"),
            ));
        }
    };
    let limit =
        match params.get("limit") {
            None => OBJECT_LIMIT,
            Some(n) => n.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| {
                ApiError::bad(format!("`limit` is `{n}`: give a positive number"))
            })?,
        };
    Ok(TimelineQuery {
        subject,
        id,
        namespace: params
            .get("namespace")
            .filter(|ns| !ns.is_empty() && *ns != "*")
            .cloned(),
        from_index: 0,
        to_index: None,
        since: None,
        until: None,
        limit,
    })
}

async fn object(
    State(state): State<ApiState>,
    Path((kind, id)): Path<(String, String)>,
    Query(params): Params,
) -> Answer {
    let query = object_query(&kind, id, &params)?;
    let cluster = served(&state).await?;
    let mut out = Capped::new(MAX_ANSWER);
    let store = state.store.as_ref();
    match timeline::run(
        store,
        &cluster,
        &query,
        Output::Json,
        &mut out,
        &Look::default(),
    )
    .await
    {
        Ok(()) => Ok(json(StatusCode::OK, out.bytes)),
        Err(e) => Err(failed(e, &out)),
    }
}
