"""Compile protos/aicut/v1/*.proto into generated/aicut/v1/ (``make protos``); ``--check`` fails when it is stale.

protoc names imports after the proto path (``from aicut.v1 import common_pb2``), which would collide with the Python
package ``aicut``; the output is therefore rewritten to import from ``generated.aicut.v1`` (grpc/grpc#29390). The
proto files keep their canonical names (``aicut/v1/worker.proto``), which is what reflection and grpcurl show.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
OUT = ROOT / "generated"
_IMPORT = re.compile(r"^from aicut\.v1 import ", re.MULTILINE)


def compile_to(dest: Path) -> dict[str, str]:
    """Run protoc into ``dest`` and return {relative path: fixed source} for every generated file."""
    files = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    args = ["protoc", f"-I{PROTOS}", f"-I{Path(protoc.__file__).parent / '_proto'}",
            f"--python_out={dest}", f"--grpc_python_out={dest}", f"--pyi_out={dest}", *files]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    out: dict[str, str] = {}
    for path in sorted(dest.rglob("*.py*")):
        out[str(path.relative_to(dest))] = _IMPORT.sub("from generated.aicut.v1 import ", path.read_text())
    for pkg in ("aicut", "aicut/v1"):
        out[f"{pkg}/__init__.py"] = ""
    out["__init__.py"] = '"""protoc output only: never edit; `make protos` rebuilds it."""\n'
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--check", action="store_true", help="exit 1 if generated/ differs from the protos")
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fresh = compile_to(Path(tmp))
    current = {str(p.relative_to(OUT)): p.read_text() for p in OUT.rglob("*.py*") if "__pycache__" not in p.parts} \
        if OUT.exists() else {}
    if opts.check:
        stale = sorted(k for k in fresh.keys() | current.keys() if fresh.get(k) != current.get(k))
        if stale:
            print("generated/ is stale; run `make protos` and commit. Differs: " + ", ".join(stale), file=sys.stderr)
            return 1
        print("generated/ is current")
        return 0
    shutil.rmtree(OUT, ignore_errors=True)
    for rel, text in fresh.items():
        target = OUT / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    print(f"wrote {len(fresh)} files under generated/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
