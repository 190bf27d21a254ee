"""Reads an event stream with python-nomad's client, as a third-party consumer.

Usage: read_stream.py HOST PORT INDEX EXPECTED_FRAMES [TOPIC ...]
Prints every frame it receives as one JSON line, then exits once it has
EXPECTED_FRAMES frames (or after 30 s without a new one).
"""

import json
import queue
import sys

import nomad


def main():
    host, port, index, expected = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    topics = sys.argv[5:]
    client = nomad.Nomad(host=host, port=port, timeout=30)
    thread, stop, events = client.event.stream.get_stream(
        index=index, topic=topics or None, namespace="*", timeout=30
    )
    thread.daemon = True
    thread.start()
    received = 0
    while received < expected:
        try:
            frame = events.get(timeout=30)
        except queue.Empty:
            break
        print(json.dumps(frame, separators=(",", ":")), flush=True)
        received += 1
    stop.set()


if __name__ == "__main__":
    main()
