//! The simulator's read endpoints over real HTTP, read with the archiver's
//! own client ([`NomadClient::read`]): stubs, namespace filters,
//! `X-Nomad-Index`, the ACL token, denied lists and garbage collection.

use serde_json::{Value, json};

use nomad_chronicle::config::{NomadConfig, Secret, parse_address};
use nomad_chronicle::nomad::{NomadClient, ReadError};
use nomad_sim::{Sim, SimConfig, SimEvent, SimFrame};

const TOKEN: &str = "list-secret";

fn frame(index: u64, topic: &str, kind: &str, key: &str, ns: &str, payload: Value) -> SimFrame {
    SimFrame {
        index,
        events: vec![SimEvent::new(topic, kind, key, ns, vec![], index, payload)],
    }
}

async fn client(sim_addr: std::net::SocketAddr, token: &str) -> NomadClient {
    let config = NomadConfig {
        address: parse_address(&format!("http://{sim_addr}")).expect("address"),
        token: Secret::parse(token).ok(),
        region: None,
        ca_cert: None,
        client_cert: None,
        client_key: None,
        tls_server_name: None,
        tls_skip_verify: false,
    };
    NomadClient::new(&config).await.expect("client")
}

async fn started() -> (Sim, std::net::SocketAddr) {
    let (sim, addr) = Sim::start(SimConfig {
        token: Some(TOKEN.into()),
        ..SimConfig::default()
    })
    .await
    .expect("start");
    let job = |id: &str, ns: &str, version: u64, index: u64| {
        json!({"Job": {"ID": id, "Namespace": ns, "Type": "batch", "Version": version, "Status": "running",
            "Stop": false, "Periodic": null, "ParameterizedJob": null, "TaskGroups": [{"Name": "g"}],
            "ModifyIndex": index, "JobModifyIndex": index}})
    };
    sim.publish(frame(
        10,
        "Job",
        "JobRegistered",
        "web",
        "default",
        job("web", "default", 0, 10),
    ));
    sim.publish(frame(
        11,
        "Job",
        "JobRegistered",
        "api",
        "prod",
        job("api", "prod", 3, 11),
    ));
    sim.publish(frame(
        12,
        "Node",
        "NodeRegistration",
        "n1",
        "",
        json!({"Node": {"ID": "n1",
        "Name": "w1", "HTTPAddr": "10.0.0.9:4646", "Status": "ready", "Drain": false,
        "Attributes": {"nomad.version": "1.11.3"}, "ModifyIndex": 12}}),
    ));
    sim.publish(frame(13, "Allocation", "PlanResult", "a1", "default", json!({"Allocation": {
        "ID": "a1", "Namespace": "default", "JobID": "web", "NodeID": "n1", "ClientStatus": "pending",
        "TaskStates": {"t": {"State": "pending"}}, "CreateIndex": 13, "ModifyIndex": 13}})));
    sim.publish(frame(
        14,
        "Job",
        "JobRegistered",
        "web",
        "default",
        job("web", "default", 1, 14),
    ));
    (sim, addr)
}

fn list(answer: &nomad_chronicle::nomad::ReadAnswer) -> Vec<Value> {
    serde_json::from_slice(&answer.body).expect("a JSON list")
}

#[tokio::test]
async fn lists_are_stubs_of_the_published_state_with_the_topics_index() {
    let (sim, addr) = started().await;
    let nomad = client(addr, TOKEN).await;

    let jobs = nomad
        .read("/v1/jobs", &[("namespace", "*")])
        .await
        .expect("jobs");
    assert_eq!(jobs.index, 14, "the jobs' last change");
    let jobs = list(&jobs);
    assert_eq!(jobs.len(), 2);
    assert_eq!(
        (
            &jobs[0]["ID"],
            &jobs[0]["Periodic"],
            &jobs[0]["JobSummary"],
            jobs[0].get("Version")
        ),
        (&json!("web"), &json!(false), &Value::Null, None),
        "a JobListStub has no version"
    );
    assert_eq!(jobs[1]["ID"], "api");
    let default = nomad.read("/v1/jobs", &[]).await.expect("jobs");
    assert_eq!(list(&default).len(), 1, "no namespace means `default`");
    let prod = nomad
        .read("/v1/jobs", &[("namespace", "prod")])
        .await
        .expect("jobs");
    assert_eq!(list(&prod)[0]["ID"], "api");

    let allocs = nomad
        .read(
            "/v1/allocations",
            &[("namespace", "*"), ("task_states", "false")],
        )
        .await
        .expect("allocations");
    assert_eq!(allocs.index, 13);
    let stub = &list(&allocs)[0];
    assert_eq!(
        (
            &stub["JobVersion"],
            &stub["JobType"],
            stub.get("TaskStates")
        ),
        (&json!(0), &json!("batch"), None),
        "the version registered when it was placed"
    );
    let with_states = nomad
        .read("/v1/allocations", &[])
        .await
        .expect("allocations");
    assert_eq!(list(&with_states)[0]["TaskStates"]["t"]["State"], "pending");

    let nodes = nomad.read("/v1/nodes", &[]).await.expect("nodes");
    let node = &list(&nodes)[0];
    assert_eq!(
        (&node["Address"], &node["Version"], nodes.index),
        (&json!("10.0.0.9:4646"), &json!("1.11.3"), 12)
    );

    let web = nomad
        .read("/v1/job/web", &[("namespace", "default")])
        .await
        .expect("job");
    let web: Value = serde_json::from_slice(&web.body).expect("a job");
    assert_eq!(
        (&web["Version"], &web["TaskGroups"][0]["Name"]),
        (&json!(1), &json!("g"))
    );
    assert!(matches!(
        nomad.read("/v1/job/web", &[("namespace", "prod")]).await,
        Err(ReadError::Status { status: 404, .. })
    ));

    sim.forget("Allocation", "default", "a1", 20);
    let after = nomad
        .read("/v1/allocations", &[])
        .await
        .expect("allocations");
    assert_eq!((after.index, list(&after).len()), (20, 0), "collected");
    assert_eq!(sim.api_requests().len(), 9);
}

#[tokio::test]
async fn a_purged_job_leaves_the_lists_its_allocations_stay_and_a_stopped_job_stays() {
    let (sim, addr) = started().await;
    let stopped = json!({"Job": {"ID": "api", "Namespace": "prod", "Type": "batch", "Version": 4,
        "Stop": true, "ModifyIndex": 15, "JobModifyIndex": 15}});
    sim.publish(frame(15, "Job", "JobDeregistered", "api", "prod", stopped));
    let purged = json!({"Deleted": true, "Job": {"ID": "web", "Namespace": "default", "Type": "batch",
        "Version": 1, "Stop": false, "ModifyIndex": 14, "JobModifyIndex": 14}});
    sim.publish(frame(
        16,
        "Job",
        "JobDeregistered",
        "web",
        "default",
        purged,
    ));
    let nomad = client(addr, TOKEN).await;

    let jobs = nomad
        .read("/v1/jobs", &[("namespace", "*")])
        .await
        .expect("jobs");
    let listed = list(&jobs);
    assert_eq!(jobs.index, 16);
    assert_eq!(listed.len(), 1, "only the stopped job is left: {listed:?}");
    assert_eq!(
        (&listed[0]["ID"], &listed[0]["Stop"]),
        (&json!("api"), &json!(true))
    );
    let allocs = nomad
        .read("/v1/allocations", &[("namespace", "*")])
        .await
        .expect("allocations");
    // Nomad's `DeleteJobTxn` deletes the job and its deployments; the
    // allocation stays until the scheduler stops it.
    assert_eq!(
        list(&allocs).len(),
        1,
        "the purge kept the job's allocation"
    );
    assert!(matches!(
        nomad.read("/v1/job/web", &[("namespace", "default")]).await,
        Err(ReadError::Status { status: 404, .. })
    ));
}

#[tokio::test]
async fn lists_honour_the_token_and_denied_capabilities() {
    let (sim, addr) = started().await;
    let wrong = client(addr, "not-it").await;
    let error = wrong.read("/v1/jobs", &[]).await.expect_err("refused");
    assert!(!error.is_retriable());
    assert_eq!(
        error.to_string(),
        "Nomad refused `/v1/jobs` (HTTP 403: Permission denied)"
    );

    sim.set_list_denied("Node", true);
    let nomad = client(addr, TOKEN).await;
    assert!(matches!(
        nomad.read("/v1/nodes", &[]).await,
        Err(ReadError::Denied { status: 403, .. })
    ));
    assert!(
        nomad.read("/v1/jobs", &[]).await.is_ok(),
        "only nodes are denied"
    );
    let statuses: Vec<u16> = sim.api_requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![403, 403, 200]);
}

#[tokio::test]
async fn a_long_running_simulator_collects_its_oldest_objects() {
    let (sim, addr) = Sim::start(SimConfig::default()).await.expect("start");
    let last = 20_000 + 1;
    for index in 1..=last {
        let id = format!("a{index}");
        sim.publish(frame(
            index,
            "Allocation",
            "PlanResult",
            &id,
            "default",
            json!({
            "Allocation": {"ID": id, "Namespace": "default", "ModifyIndex": index}}),
        ));
    }
    let nomad = client(addr, "").await;

    let allocs = nomad
        .read("/v1/allocations", &[])
        .await
        .expect("allocations");

    let listed = list(&allocs);
    assert_eq!((allocs.index, listed.len()), (last, 10_000));
    assert!(
        listed
            .iter()
            .all(|a| a["ModifyIndex"].as_u64() > Some(last - 10_000)),
        "the newest are kept"
    );
}
