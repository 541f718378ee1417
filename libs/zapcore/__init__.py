"""ZAP's shared runtime: settings, errors, identity, gRPC, database, Redis, logs and metrics."""
