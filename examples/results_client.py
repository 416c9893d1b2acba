"""React to temstream's results feed: print the particle count and act on events.

Start a run with the feed on, then this client::

    temstream run --connect tcp://127.0.0.1:5555 results.publish=tcp://127.0.0.1:5556
    python examples/results_client.py tcp://127.0.0.1:5556 --threshold 20

The feed's schema is in docs/results-feed.md. Here the "action" is a print; an acquisition
script would lower the dose, stop the series or move the stage instead.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import zmq

from temstream.stream.results_schema import SCHEMA, TOPIC_SUMMARY


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("endpoint", nargs="?", default="tcp://127.0.0.1:5556")
    parser.add_argument("--threshold", type=int, default=20,
                        help="act when more particles than this are in view")
    args = parser.parse_args()

    sock = zmq.Context.instance().socket(zmq.SUB)
    sock.setsockopt(zmq.SUBSCRIBE, b"")  # b"frame" alone would skip the run summary
    sock.connect(args.endpoint)
    print(f"listening to {args.endpoint}; Ctrl-C to stop")
    try:
        while True:
            topic, *parts = sock.recv_multipart()
            msg = json.loads(parts[0])
            if msg.get("schema") != SCHEMA:
                continue  # a newer schema: check docs/results-feed.md
            if topic == TOPIC_SUMMARY:
                print("run ended:", msg["summary"])
                break
            count = msg["n_particles"]
            print(f"series {msg['series']} frame {msg['frame']}: {count} particles, "
                  f"latency {msg['latency_ms']} ms")
            for event in msg["events"]:
                if event["type"] == "track_appeared":
                    print(f"  new particle {event['particle']}")
                elif event["type"] == "grew":
                    print(f"  particle {event['particle']} grew x{event['ratio']:.2f}")
            if count > args.threshold:
                print(f"  ACTION: {count} > {args.threshold} particles: lower the dose")
            if "labels" in msg and len(parts) > 1:  # results.labels = true
                labels = np.frombuffer(parts[1], np.int32).reshape(msg["labels"]["shape"])
                print(f"  label image {labels.shape}, {labels.max()} labels")
    except KeyboardInterrupt:
        pass
    finally:
        sock.close(0)


if __name__ == "__main__":
    main()
