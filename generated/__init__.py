"""protoc output only: never edit; `make protos` rebuilds it."""
