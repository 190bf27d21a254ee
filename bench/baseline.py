#!/usr/bin/env python3
"""THE BASELINE of `bench all`: what a short script does instead of
nomad-chronicle. Python's standard library only.

It reads Nomad's event stream over HTTP line by line, parses each frame with
json.loads, and inserts one row per event into an sqlite3 table with
executemany, committing every --batch-size events; WAL and
synchronous=NORMAL, as nomad-chronicle uses. Its table holds the same
columns, with a unique key on the event's identity so a resend is skipped,
but none of the lookup indexes the query commands need, and the event's
JSON is re-serialized (json.dumps) rather than kept byte for byte. No
reconnects, checkpoints, gaps or malformed-line handling.

    python3 bench/baseline.py --address http://127.0.0.1:4646 --db baseline.db --until-index N
"""

import argparse
import json
import sqlite3
import time
import urllib.request

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    raft_index INTEGER NOT NULL, position INTEGER NOT NULL,
    topic TEXT NOT NULL, type TEXT NOT NULL, key TEXT NOT NULL, namespace TEXT NOT NULL,
    job_id TEXT, node_id TEXT, eval_id TEXT, deployment_id TEXT,
    received_at INTEGER NOT NULL, event TEXT NOT NULL,
    UNIQUE (raft_index, topic, namespace, key)
)
"""

INSERT = "INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"


def row(index, position, event, received_at):
    topic, key = event["Topic"], event.get("Key") or ""
    payload = event.get("Payload") or {}
    obj = next(iter(payload.values()), None) if len(payload) == 1 else None
    obj = obj if isinstance(obj, dict) else {}
    return (
        index, position, topic, event["Type"], key, event.get("Namespace") or "",
        key if topic == "Job" else obj.get("JobID") or None,
        key if topic == "Node" else obj.get("NodeID") or None,
        key if topic == "Evaluation" else obj.get("EvalID") or None,
        key if topic == "Deployment" else obj.get("DeploymentID") or None,
        received_at, json.dumps(event),
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default="http://127.0.0.1:4646")
    parser.add_argument("--db", required=True)
    parser.add_argument("--until-index", type=int, help="stop after the frame with this Index")
    parser.add_argument("--batch-size", type=int, default=1000)
    args = parser.parse_args()

    db = sqlite3.connect(args.db)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(SCHEMA)
    rows = []
    url = args.address.rstrip("/") + "/v1/event/stream?namespace=*"
    with urllib.request.urlopen(url) as stream:
        for line in stream:
            frame = json.loads(line)
            if not frame:  # {} heartbeat
                continue
            index, received_at = frame["Index"], int(time.time() * 1000)
            rows.extend(row(index, p, e, received_at) for p, e in enumerate(frame["Events"]))
            if len(rows) >= args.batch_size:
                db.executemany(INSERT, rows)
                db.commit()
                rows.clear()
            if args.until_index is not None and index >= args.until_index:
                break
    db.executemany(INSERT, rows)
    db.commit()
    db.close()


if __name__ == "__main__":
    main()
