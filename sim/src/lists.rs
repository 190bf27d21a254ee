//! The simulated state store behind Nomad's read endpoints: `/v1/jobs`,
//! `/v1/allocations`, `/v1/evaluations`, `/v1/deployments`, `/v1/nodes` and
//! `/v1/job/:id`, answered from what was published (each object as its
//! latest event describes it), with Nomad's list stubs, `namespace`
//! filtering (`*` for all, `default` when absent) and `X-Nomad-Index` (the
//! index of the topic's last change, as Nomad reports a table's index).
//!
//! Publishing keeps a reference to each object's latest event and parses
//! nothing but job events, so the stream stays as fast as before; a list
//! parses the objects it returns. What the stream never says — garbage
//! collection — is simulated with [`crate::Sim::forget`]; a token lacking a
//! list's capability with [`crate::Sim::set_list_denied`], a failing server
//! with [`crate::Sim::set_list_failing`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::acl::Acl;
use super::buffer::Entry;
use super::reply::text;
use super::sync::lock;

mod stubs;
use stubs::{alloc_stub, job_stub, node_stub};

/// The topics whose objects the read endpoints serve.
const TOPICS: [&str; 5] = ["Job", "Allocation", "Evaluation", "Deployment", "Node"];
/// Objects of a topic kept after a garbage collection. The stream never
/// says what Nomad collects, so a long-running simulator collects the least
/// recently changed objects of a topic once it holds twice this many, to
/// keep bounded memory (each object holds its latest frame).
const KEEP_PER_TOPIC: usize = 10_000;

/// One read request as the server saw it, for tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiRequest {
    /// The path, e.g. `/v1/allocations`.
    pub path: String,
    /// The raw query string, without the `?`.
    pub query: String,
    /// The HTTP status answered.
    pub status: u16,
}

/// A job's registrations: `(index, version, type)` each.
type Registrations = Vec<(u64, u64, String)>;

/// Where an object's latest description lives.
struct Held {
    entry: Arc<Entry>,
    position: usize,
}

/// The read endpoints and the objects they answer from.
#[derive(Default)]
pub(crate) struct Lists {
    /// What was published, and how the lists answer.
    objects: Mutex<Objects>,
}

/// The objects the read endpoints answer from.
#[derive(Default)]
struct Objects {
    /// `(topic, namespace, key)` → the latest event of each live object.
    live: BTreeMap<(String, String, String), Held>,
    /// The newest index taken in: after a restart, frames the state already
    /// holds are published again and change nothing.
    applied: Option<u64>,
    /// Per topic, the index of its last change: `X-Nomad-Index`.
    table_index: HashMap<String, u64>,
    /// Per topic, how many objects are live.
    counts: HashMap<String, usize>,
    /// Per job `(namespace, id)`: `(index, version, type)` of each
    /// registration, to give allocations their job's version and type.
    job_versions: HashMap<(String, String), Registrations>,
    /// Topics whose list the token may not read.
    denied: BTreeSet<String>,
    /// Topics whose list fails, with the status and body it fails with.
    failing: BTreeMap<String, (u16, String)>,
    /// Every read request.
    requests: Vec<ApiRequest>,
}

impl Objects {
    /// Takes in a published entry.
    fn apply(&mut self, entry: &Arc<Entry>) {
        if self.applied.is_some_and(|last| entry.index <= last) {
            return;
        }
        self.applied = Some(entry.index);
        for (position, (event, json)) in entry.events().enumerate() {
            let Some(topic) = TOPICS.iter().find(|t| **t == event.topic) else {
                continue;
            };
            self.table_index.insert((*topic).to_owned(), entry.index);
            let id = (
                event.topic.clone(),
                event.namespace.clone(),
                event.key.clone(),
            );
            let mut gone = event.event_type == "NodeDeregistration";
            if *topic == "Job" {
                // `job stop` keeps the job listed (stopped); a purge (or the
                // job garbage collection) deletes it, with its deployments.
                let payload = serde_json::from_str::<Value>(json)
                    .map(|mut v| v["Payload"].take())
                    .unwrap_or(Value::Null);
                let job = &payload["Job"];
                gone = job.is_null() || payload["Deleted"] == true;
                if gone {
                    self.remove_job_objects(&event.namespace, &event.key, entry.index);
                } else if let Some(version) = job["Version"].as_u64() {
                    let kind = job["Type"].as_str().unwrap_or("service").to_owned();
                    self.job_versions
                        .entry((event.namespace.clone(), event.key.clone()))
                        .or_default()
                        .push((entry.index, version, kind));
                }
            }
            if gone {
                self.remove(&id);
            } else {
                let held = Held {
                    entry: entry.clone(),
                    position,
                };
                if self.live.insert(id, held).is_none() {
                    *self.counts.entry((*topic).to_owned()).or_default() += 1;
                }
            }
            if self
                .counts
                .get(*topic)
                .is_some_and(|n| *n > 2 * KEEP_PER_TOPIC)
            {
                self.collect_garbage(topic, entry.index);
            }
        }
    }

    fn remove(&mut self, id: &(String, String, String)) -> bool {
        let removed = self.live.remove(id).is_some();
        if removed {
            if let Some(n) = self.counts.get_mut(&id.0) {
                *n = n.saturating_sub(1);
            }
        }
        removed
    }

    /// Deletes a purged job's deployments, as Nomad's state store does in
    /// the purge's own entry (`DeleteJobTxn`; the stream says nothing of
    /// them). Its allocations stay until the scheduler stops them.
    fn remove_job_objects(&mut self, namespace: &str, job: &str, index: u64) {
        for topic in ["Deployment"] {
            let doomed: Vec<(String, String, String)> = self
                .live
                .iter()
                .filter(|((t, ns, _), _)| t == topic && ns == namespace)
                .filter(|(_, held)| self.object(held, topic)["JobID"] == job)
                .map(|(id, _)| id.clone())
                .collect();
            if !doomed.is_empty() {
                for id in &doomed {
                    self.remove(id);
                }
                self.table_index.insert(topic.to_owned(), index);
            }
        }
    }

    /// Forgets the least recently changed objects of `topic` beyond
    /// [`KEEP_PER_TOPIC`], as Nomad's garbage collector would at `index`.
    fn collect_garbage(&mut self, topic: &str, index: u64) {
        let mut ages: Vec<(u64, (String, String, String))> = self
            .live
            .iter()
            .filter(|((t, _, _), _)| t == topic)
            .map(|(id, held)| (held.entry.index, id.clone()))
            .collect();
        ages.sort();
        let excess = ages.len().saturating_sub(KEEP_PER_TOPIC);
        for (_, id) in ages.into_iter().take(excess) {
            self.remove(&id);
        }
        self.table_index.insert(topic.to_owned(), index);
    }

    /// The version and type of a job at `index`.
    fn job_at(&self, namespace: &str, job: &str, index: u64) -> Option<(u64, &str)> {
        let versions = self
            .job_versions
            .get(&(namespace.to_owned(), job.to_owned()))?;
        versions
            .iter()
            .rev()
            .find(|(at, _, _)| *at <= index)
            .or(versions.first())
            .map(|(_, version, kind)| (*version, kind.as_str()))
    }

    /// The version and type of an allocation's job when it was created,
    /// `(0, "")` when the job was never seen.
    fn job_of(&self, alloc: &Value) -> (u64, &str) {
        let text = |f: &str| alloc[f].as_str().unwrap_or_default();
        let created = alloc["CreateIndex"].as_u64().unwrap_or(u64::MAX);
        self.job_at(text("Namespace"), text("JobID"), created)
            .unwrap_or((0, ""))
    }

    /// The object as its latest event describes it.
    fn object(&self, held: &Held, topic: &str) -> Value {
        held.entry
            .events()
            .nth(held.position)
            .and_then(|(_, json)| serde_json::from_str::<Value>(json).ok())
            .map(|v| v["Payload"][topic].clone())
            .unwrap_or(Value::Null)
    }
}

impl Lists {
    /// Takes in a published entry.
    pub(crate) fn apply(&self, entry: &Arc<Entry>) {
        lock(&self.objects).apply(entry);
    }

    /// Forgets every object (another cluster); the settings of a test go too.
    pub(crate) fn reset(&self) {
        *lock(&self.objects) = Objects::default();
    }

    /// Forgets an object without an event, as Nomad's garbage collector
    /// does: it leaves the lists, and its topic's index moves to `index`.
    pub(crate) fn forget(&self, topic: &str, namespace: &str, key: &str, index: u64) {
        let mut objects = lock(&self.objects);
        let id = (topic.to_owned(), namespace.to_owned(), key.to_owned());
        if objects.remove(&id) {
            let at = objects.table_index.entry(topic.to_owned()).or_default();
            *at = (*at).max(index);
        }
    }

    /// Refuses the list of `topic` (403), or answers it again.
    pub(crate) fn set_denied(&self, topic: &str, denied: bool) {
        let mut objects = lock(&self.objects);
        if denied {
            objects.denied.insert(topic.to_owned());
        } else {
            objects.denied.remove(topic);
        }
    }

    /// Makes the list of `topic` fail with this status and body, or work again.
    pub(crate) fn set_failing(&self, topic: &str, failure: Option<(u16, &str)>) {
        let mut objects = lock(&self.objects);
        match failure {
            Some((status, body)) => {
                objects
                    .failing
                    .insert(topic.to_owned(), (status, body.to_owned()));
            }
            None => {
                objects.failing.remove(topic);
            }
        }
    }

    /// Every read request so far, in arrival order.
    pub(crate) fn requests(&self) -> Vec<ApiRequest> {
        lock(&self.objects).requests.clone()
    }

    /// `GET /v1/job/:id`: the whole job.
    pub(crate) fn job(&self, acl: &Acl, id: String, uri: &Uri, headers: &HeaderMap) -> Response {
        let query = Query::parse(uri);
        let answer = self.refusal(acl, "Job", headers).unwrap_or_else(|| {
            let objects = lock(&self.objects);
            let key = ("Job".to_owned(), query.namespace_or_default(), id);
            match objects.live.get(&key) {
                Some(held) => json_answer(&objects.object(held, "Job"), index_of(&objects, "Job")),
                None => text(StatusCode::NOT_FOUND, "job not found"),
            }
        });
        self.record(uri, answer)
    }

    /// `GET /v1/jobs`, `/v1/allocations`, … : the list of `topic`.
    pub(crate) fn list(&self, acl: &Acl, topic: &str, uri: &Uri, headers: &HeaderMap) -> Response {
        let query = Query::parse(uri);
        let answer = self.refusal(acl, topic, headers).unwrap_or_else(|| {
            let objects = lock(&self.objects);
            let listed: Vec<Value> = objects
                .live
                .iter()
                .filter(|((t, ns, _), _)| t == topic && (topic == "Node" || query.wants(ns)))
                .map(|(_, held)| {
                    let object = objects.object(held, topic);
                    match topic {
                        "Job" => job_stub(&object),
                        "Allocation" => {
                            alloc_stub(&object, objects.job_of(&object), query.task_states)
                        }
                        "Node" => node_stub(&object, query.resources),
                        _ => object,
                    }
                })
                .collect();
            json_answer(&Value::Array(listed), index_of(&objects, topic))
        });
        self.record(uri, answer)
    }

    /// The answer to a read of `topic` when it is refused (ACL) or made to fail.
    fn refusal(&self, acl: &Acl, topic: &str, headers: &HeaderMap) -> Option<Response> {
        if !acl.authorizes(headers) || lock(&self.objects).denied.contains(topic) {
            return Some(text(StatusCode::FORBIDDEN, "Permission denied"));
        }
        if acl.expired() {
            return Some(text(StatusCode::FORBIDDEN, "ACL token expired"));
        }
        let failing = lock(&self.objects).failing.get(topic).cloned();
        failing.map(|(status, body)| {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            text(status, body)
        })
    }

    /// Keeps the request for [`crate::Sim::api_requests`].
    fn record(&self, uri: &Uri, response: Response) -> Response {
        let request = ApiRequest {
            path: uri.path().to_owned(),
            query: uri.query().unwrap_or_default().to_owned(),
            status: response.status().as_u16(),
        };
        lock(&self.objects).requests.push(request);
        response
    }
}

fn index_of(objects: &Objects, topic: &str) -> u64 {
    objects.table_index.get(topic).copied().unwrap_or(0).max(1)
}

fn json_answer(body: &Value, index: u64) -> Response {
    let mut response = (StatusCode::OK, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert("X-Nomad-Index", HeaderValue::from(index));
    headers.insert("X-Nomad-KnownLeader", HeaderValue::from_static("true"));
    headers.insert("X-Nomad-LastContact", HeaderValue::from_static("0"));
    response
}

/// The query parameters the read endpoints honour.
struct Query {
    namespace: Option<String>,
    task_states: bool,
    resources: bool,
}

impl Query {
    fn parse(uri: &Uri) -> Query {
        let pairs: Vec<(String, String)> =
            form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        Query {
            namespace: get("namespace"),
            // Nomad's defaults: task states on, resources off.
            task_states: get("task_states").is_none_or(|v| v != "false"),
            resources: get("resources").is_some_and(|v| v == "true"),
        }
    }

    fn namespace_or_default(&self) -> String {
        self.namespace
            .clone()
            .filter(|ns| !ns.is_empty())
            .unwrap_or_else(|| "default".to_owned())
    }

    fn wants(&self, namespace: &str) -> bool {
        let asked = self.namespace_or_default();
        asked == "*" || asked == namespace
    }
}
