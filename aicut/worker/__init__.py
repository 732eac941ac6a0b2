"""The worker: a gRPC server that runs cutting tasks in child processes on this machine."""
