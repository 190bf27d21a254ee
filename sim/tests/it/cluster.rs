//! The simulated cluster over real HTTP: the namespace list as a blocking
//! query, streams that do not cover namespaces created after they started
//! (as Nomad >= 1.9.6), the members' identity, restarts and becoming
//! another cluster.

use std::time::Duration;

use crate::http::{fast, get, job_frame};
use nomad_chronicle::nomad::ClusterIdentity;
use nomad_sim::{Sim, SimConfig};

/// A plain GET over loopback: status, `X-Nomad-Index`, body.
async fn call(addr: std::net::SocketAddr, path: &str) -> (u16, Option<u64>, String) {
    let response = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
    let status = response.status().as_u16();
    let index = response
        .headers()
        .get("X-Nomad-Index")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (status, index, response.text().await.unwrap())
}

fn names(body: &str) -> Vec<String> {
    let list: Vec<serde_json::Value> = serde_json::from_str(body).unwrap();
    list.iter()
        .map(|ns| ns["Name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_namespace_created_after_a_subscription_is_not_streamed_to_it() {
    let (sim, addr) = Sim::start(fast()).await.unwrap();
    sim.publish(job_frame(10, "default"));
    let mut before = get(addr, "/v1/event/stream?namespace=*", "").await;
    assert_eq!(before.line().await, "{}");
    assert_eq!(before.line().await, job_frame(10, "default").to_line());

    let created = sim.create_namespace("staging");
    assert_eq!(created, 11, "the next raft index");
    sim.publish(job_frame(12, "staging"));
    sim.publish(job_frame(13, "default"));

    assert_eq!(
        before.line().await,
        job_frame(13, "default").to_line(),
        "the staging event at 12 never reaches the older subscription"
    );
    let mut after = get(addr, "/v1/event/stream?namespace=*&index=11", "").await;
    assert_eq!(after.line().await, "{}");
    assert_eq!(after.line().await, job_frame(12, "staging").to_line());
    assert_eq!(after.line().await, job_frame(13, "default").to_line());
    let mut named = get(addr, "/v1/event/stream?namespace=staging", "").await;
    assert_eq!(named.line().await, "{}");
    assert_eq!(named.line().await, job_frame(12, "staging").to_line());
}

#[tokio::test]
async fn the_namespace_list_is_a_blocking_query() {
    let (sim, addr) = Sim::start(fast()).await.unwrap();
    let (status, index, body) = call(addr, "/v1/namespaces").await;
    assert_eq!((status, index), (200, Some(1)));
    assert_eq!(names(&body), ["analytics", "default", "platform"]);

    let waiting = tokio::spawn(async move { call(addr, "/v1/namespaces?index=1&wait=30s").await });
    let early = tokio::time::timeout(Duration::from_millis(200), async {
        while !waiting.is_finished() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(early.is_err(), "nothing changed: the query blocks");
    sim.publish(job_frame(20, "default"));
    let created = sim.create_namespace("staging");
    let (status, index, body) = waiting.await.unwrap();
    assert_eq!((status, index), (200, Some(created)));
    assert_eq!(
        names(&body),
        ["analytics", "default", "platform", "staging"]
    );
    let list: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(list[3]["CreateIndex"], created);

    let (status, index, _) = call(addr, &format!("/v1/namespaces?index={created}&wait=50ms")).await;
    assert_eq!(
        (status, index),
        (200, Some(created)),
        "after the wait, the same index"
    );
    assert_eq!(call(addr, "/v1/namespaces?index=x").await.0, 400);
    sim.push_namespaces_fault(500);
    assert_eq!(call(addr, "/v1/namespaces").await.0, 500);
    sim.set_namespaces_denied(true);
    assert_eq!(call(addr, "/v1/namespaces").await.0, 403);
    assert_eq!(sim.namespace_requests(), 6);
}

#[tokio::test]
async fn members_name_the_servers_and_another_cluster_has_other_ones() {
    let (sim, addr) = Sim::start(fast()).await.unwrap();
    let (status, _, body) = call(addr, "/v1/agent/members").await;
    assert_eq!(status, 200);
    let first = ClusterIdentity::from_members(body.as_bytes(), None).unwrap();
    assert_eq!(first, sim.identity());
    assert_eq!((first.region.as_str(), first.servers.len()), ("global", 3));
    let other = Sim::new(SimConfig::default()).identity();
    assert!(
        !first.same_cluster(&other),
        "every simulator is its own cluster"
    );

    sim.publish(job_frame(500, "default"));
    sim.create_namespace("staging");
    sim.become_another_cluster();
    let second = sim.identity();
    assert!(!first.same_cluster(&second));
    assert!(sim.history().is_empty(), "its history starts over");
    sim.publish(job_frame(3, "default"));
    let (_, index, body) = call(addr, "/v1/namespaces").await;
    assert_eq!(index, Some(1));
    assert_eq!(names(&body), ["analytics", "default", "platform"]);

    sim.set_members_denied(true);
    assert_eq!(call(addr, "/v1/agent/members").await.0, 403);
}

#[tokio::test]
async fn a_restart_ends_streams_and_the_new_leader_may_serve_older_entries() {
    let (sim, addr) = Sim::start(fast()).await.unwrap();
    let identity = sim.identity();
    sim.publish(job_frame(10, "default"));
    sim.publish(job_frame(12, "default"));
    let mut stream = get(addr, "/v1/event/stream?namespace=*", "").await;
    assert_eq!(stream.line().await, "{}");
    assert_eq!(stream.line().await, job_frame(10, "default").to_line());
    assert_eq!(stream.line().await, job_frame(12, "default").to_line());

    sim.restart();

    assert_eq!(
        stream.rest().await,
        Ok("subscription closed by server, client should resubscribe".to_owned())
    );
    sim.publish(job_frame(11, "default"));
    sim.publish(job_frame(12, "default"));
    sim.publish(job_frame(14, "default"));
    let mut again = get(addr, "/v1/event/stream?namespace=*&index=12", "").await;
    assert_eq!(again.line().await, "{}");
    assert_eq!(again.line().await, job_frame(12, "default").to_line());
    assert_eq!(sim.identity(), identity, "the same cluster");
    let kept: Vec<u64> = sim.history().iter().map(|f| f.index).collect();
    assert_eq!(kept, [10, 12, 14], "re-published frames appear once");
}
