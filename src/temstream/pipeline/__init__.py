"""The threaded runner: ingest -> preprocess -> segment -> instances -> link -> sinks."""
