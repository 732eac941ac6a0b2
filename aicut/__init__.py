"""aicut: a gRPC cluster that cuts talking-head videos posted on a Discuz! X forum."""

__version__ = "0.1.0"
