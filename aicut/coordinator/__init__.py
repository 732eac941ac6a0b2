"""The coordinator: links to every worker, the scheduler, task state in Redis, and the Coordinator gRPC API."""
