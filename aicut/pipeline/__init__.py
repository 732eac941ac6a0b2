"""The task pipeline: one plain function per stage, each with its own options dataclass."""
