"""aicut: a gRPC cluster that cuts talking-head videos posted on a Discuz! X forum."""

import os as _os

# Our child processes (task processes, the embedded Valkey, the local worker) exec right after fork and never use
# gRPC. With gRPC's fork handlers on, a fork taken while gRPC objects exist restarts its poller in the child, which
# then aborts before exec now and then (measured: 8 of 200 forks; grpc/grpc#43055). Must be set before grpc loads.
_os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")

__version__ = "0.1.0"
