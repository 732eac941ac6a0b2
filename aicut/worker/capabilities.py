"""What this worker can do (NVENC, NVDEC, GPUs, CPUs, speech model, encoders) and what it has left (memory, disk).

The NVIDIA probes load native libraries that can crash the whole process, so the worker never runs them in its own
process: ``probe_in_subprocess`` runs ``python -m aicut.worker.capabilities`` in a child with a timeout and falls back
to a CPU-only answer when the child dies or hangs.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import dataclasses
import json
import logging
import os
import re
import shutil
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

import aicut

logger = logging.getLogger(__name__)

# A tiny probe encode: 256x256 is above every NVENC generation's minimum frame size (H.264/HEVC/AV1), still cheap.
_PROBE_SIZE = 256
# Reasons travel in Health and every status snapshot and end up on one dashboard line.
_REASON_MAX = 240
# Data-center GPUs that have NVDEC but no NVENC engine (PRIOR_ART.md §5). Used only to explain a failed encoder
# attempt; whether NVENC works is always decided by actually opening an encoder.
_NO_NVENC_GPU = re.compile(r"\b(A100|A800|A30|H100|H800|H200|GH200)\b", re.IGNORECASE)
# A CTranslate2 Whisper directory (what faster-whisper loads from a local path) needs these plus vocabulary.*.
_SPEECH_MODEL_FILES = ("model.bin", "config.json", "tokenizer.json")
_SPEECH_VOCABULARY = ("vocabulary.json", "vocabulary.txt")


@dataclass(frozen=True, slots=True)
class Gpu:
    """One NVIDIA GPU as NVML sees it."""

    index: int
    name: str
    memory_total_bytes: int
    memory_free_bytes: int


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What this worker can do, probed once at start; carried by Health and every status snapshot."""

    nvenc: bool
    nvenc_reason: str
    nvdec: bool
    nvdec_reason: str
    gpus: tuple[Gpu, ...]
    cpu_count: int
    speech_model_ready: bool
    speech_model: str
    speech_model_reason: str
    encoders: tuple[str, ...]  # usable encoder backends, best first: ("nvenc", "x264") or ("x264",)
    version: str  # aicut.__version__


@dataclass(frozen=True, slots=True)
class Resources:
    """What this machine has left right now; sampled for every status snapshot."""

    memory_total_bytes: int
    memory_available_bytes: int
    disk_total_bytes: int
    disk_free_bytes: int
    load_avg_1m: float


# --- helpers -------------------------------------------------------------------------------------------------------


def _one_line(text: object, limit: int = 160) -> str:
    """The first non-empty line of ``text``, whitespace collapsed and cut to ``limit`` characters."""
    # NVIDIA's messages run to dozens of lines of troubleshooting; the first line is the one that says what failed.
    for line in str(text).splitlines():
        line = " ".join(line.split())
        if line:
            return line if len(line) <= limit else line[: limit - 3] + "..."
    return type(text).__name__ if isinstance(text, BaseException) else ""


def _reason(text: str) -> str:
    return text if len(text) <= _REASON_MAX else text[: _REASON_MAX - 3] + "..."


def _nvidia_driver_present() -> bool:
    """Whether the NVIDIA driver's CUDA library can be loaded (loading it does not initialise a GPU)."""
    names = ("nvcuda.dll",) if sys.platform == "win32" else ("libcuda.so.1", "libcuda.so")
    for name in names:
        try:
            ctypes.CDLL(name)
        except OSError:
            continue
        return True
    return False


_nvc_cache: tuple[Any, str] | None = None


def _load_nvc() -> tuple[Any, str]:
    """Import PyNvVideoCodec once: (module, "") or (None, a one-line reason)."""
    global _nvc_cache
    if _nvc_cache is None:
        _nvc_cache = _import_nvc()
    return _nvc_cache


def _import_nvc() -> tuple[Any, str]:
    # Imported here, never at module level: the import itself raises (after dlopen of libnvidia-encode) on a machine
    # without the driver, and the CPU-only path must not depend on it.
    try:
        import PyNvVideoCodec as nvc  # noqa: N813
    except ImportError as exc:
        if getattr(exc, "name", None) == "PyNvVideoCodec":
            return None, "PyNvVideoCodec is not installed (pip install PyNvVideoCodec)"
        return None, _reason(f"PyNvVideoCodec failed to import: {_one_line(exc)}")
    except Exception as exc:  # RuntimeError and OSError from the driver check, anything else from the native module
        first = _one_line(exc)
        logger.debug("PyNvVideoCodec import failed: %s", exc)
        if "libnvidia-encode" in first:
            if _nvidia_driver_present():
                return None, (
                    "PyNvVideoCodec cannot load the NVENC library (libnvidia-encode.so.1): the NVIDIA driver is "
                    "installed without its video libraries; in a container set "
                    "NVIDIA_DRIVER_CAPABILITIES=compute,utility,video"
                )
            return None, (
                "PyNvVideoCodec cannot load the NVENC library (libnvidia-encode.so.1): no NVIDIA driver on this machine"
            )
        if "too old" in first.lower():
            return None, "the NVIDIA driver is too old for PyNvVideoCodec (it needs NVENC API 12.1+): update the driver"
        return None, _reason(f"PyNvVideoCodec failed to import: {first}")
    return nvc, ""


def _gpu_label(gpus: tuple[Gpu, ...]) -> str:
    """How reasons name CUDA device 0, the one the probes use."""
    # NVML lists GPUs in PCI order while CUDA's default order is fastest first, so a name is only safe to print
    # when every GPU in the machine has the same one (the usual case for a worker).
    names = {g.name for g in gpus}
    if len(names) == 1:
        return f"GPU 0 ({names.pop()})"
    return "GPU 0"


def _x264_available() -> bool:
    """Whether PyAV's FFmpeg has the libx264 encoder."""
    try:
        import av

        av.codec.Codec("libx264", "w")
    except (ImportError, ValueError):  # av.codec.codec.UnknownCodecError is a ValueError
        return False
    return True


def _cpu_count() -> int:
    # The CPUs this process may run on (taskset, cpuset of a container), not the machine's total.
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _encoders(nvenc: bool) -> tuple[str, ...]:
    encoders: list[str] = []
    if nvenc:
        encoders.append("nvenc")
    if _x264_available():
        encoders.append("x264")
    return tuple(encoders)


# --- probes --------------------------------------------------------------------------------------------------------


def probe_nvenc(gpus: tuple[Gpu, ...] | None = None) -> tuple[bool, str]:
    """Open a tiny H.264 NVENC encoder on GPU 0 and encode one frame: (works, one-line reason)."""
    nvc, why = _load_nvc()
    if nvc is None:
        return False, why
    label = _gpu_label(probe_gpus() if gpus is None else gpus)
    try:
        # use_cpu_buffer=True so the probe needs no CUDA array library; the session is opened here, and this is
        # where GPUs without an NVENC engine (A100/H100/H200) fail.
        encoder = nvc.CreateEncoder(_PROBE_SIZE, _PROBE_SIZE, "NV12", True, codec="h264")
        try:
            frame = _grey_nv12_frame()
            if frame is not None:
                encoder.Encode(frame)
            else:
                # PyNvVideoCodec takes host frames only as numpy arrays; without numpy the opened session is
                # the evidence.
                logger.debug("numpy is not installed: NVENC probe opened a session but encoded no frame")
            encoder.EndEncode()
        finally:
            del encoder
    except Exception as exc:  # PyNvVCException, PyNvVCExceptionUnsupported, RuntimeError: all mean "no NVENC"
        detail = _one_line(exc, 120)
        logger.debug("NVENC probe failed on %s: %s", label, exc)
        if _NO_NVENC_GPU.search(label):
            return False, _reason(f"{label} has no NVENC hardware encoder; videos are encoded with x264 ({detail})")
        return False, _reason(f"NVENC encoder could not be opened on {label}: {detail}")
    return True, f"h264 NVENC on {label}"


def _grey_nv12_frame() -> Any:
    """One mid-grey NV12 frame of the probe size as a numpy array, or None without numpy."""
    try:
        import numpy as np
    except ImportError:
        return None
    return np.full(_PROBE_SIZE * _PROBE_SIZE * 3 // 2, 128, dtype=np.uint8)


def probe_nvdec(gpus: tuple[Gpu, ...] | None = None) -> tuple[bool, str]:
    """Ask GPU 0's NVDEC for H.264 8-bit 4:2:0 support and open a decoder: (works, one-line reason)."""
    nvc, why = _load_nvc()
    if nvc is None:
        return False, why
    label = _gpu_label(probe_gpus() if gpus is None else gpus)
    try:
        codec = nvc.cudaVideoCodec.H264
        caps = dict(nvc.GetDecoderCaps(gpuid=0, codec=codec))
        if not caps.get("supported"):
            return False, f"NVDEC on {label} does not decode 8-bit 4:2:0 H.264"
        # The caps query uses a throw-away context; opening a real decoder proves sessions can be created.
        decoder = nvc.CreateDecoder(gpuid=0, codec=codec, usedevicememory=True)
        del decoder
    except Exception as exc:  # any failure of the native calls means "no NVDEC"
        logger.debug("NVDEC probe failed on %s: %s", label, exc)
        return False, _reason(f"NVDEC decoder could not be opened on {label}: {_one_line(exc, 120)}")
    engines = caps.get("num_decoder_engines", 0)
    size = f"up to {caps.get('width_max', 0)}x{caps.get('height_max', 0)}"
    return True, f"h264 NVDEC on {label}: {engines} engine(s), {size}"


def probe_gpus() -> tuple[Gpu, ...]:
    """The NVIDIA GPUs NVML reports, with total and free memory; () without the driver."""
    try:
        import pynvml
    except ImportError:
        return ()
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        logger.debug("NVML unavailable: %s", exc)
        return ()
    gpus: list[Gpu] = []
    try:
        for index in range(pynvml.nvmlDeviceGetCount()):
            try:
                handle = pynvml.nvmlDeviceGetHandleByIndex(index)
                name = pynvml.nvmlDeviceGetName(handle)
                memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            except pynvml.NVMLError as exc:
                # One lost GPU (fallen off the bus, Xid 79) must not hide the others.
                logger.warning("GPU %d cannot be queried: %s", index, exc)
                continue
            if isinstance(name, bytes):  # older nvidia-ml-py returns bytes
                name = name.decode("utf-8", "replace")
            gpus.append(Gpu(index, str(name), int(memory.total), int(memory.free)))
    except pynvml.NVMLError as exc:
        logger.warning("NVML cannot count GPUs: %s", exc)
    finally:
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError:
            pass
    return tuple(gpus)


def check_speech_model(model_dir: str) -> tuple[bool, str]:
    """Whether ``model_dir`` holds a complete CTranslate2 Whisper model (files only; the model is not loaded)."""
    if not model_dir:
        return False, "no speech model configured"
    path = Path(model_dir).expanduser()
    if not path.exists():
        return False, f"speech model directory {path} does not exist"
    if not path.is_dir():
        return False, f"speech model path {path} is not a directory"
    missing = [name for name in _SPEECH_MODEL_FILES if not (path / name).is_file()]
    if not any((path / name).is_file() for name in _SPEECH_VOCABULARY):
        missing.append(" or ".join(_SPEECH_VOCABULARY))
    if missing:
        return False, f"speech model directory {path} is missing {', '.join(missing)}"
    weights = path / "model.bin"
    try:
        size = weights.stat().st_size
        with weights.open("rb") as f:
            head = f.read(64)
    except OSError as exc:
        return False, _reason(f"cannot read {weights}: {exc.strerror or exc}")
    if size == 0:
        return False, f"{weights} is empty"
    # A clone without git-lfs leaves a 130-byte text pointer where the weights should be.
    if head.startswith(b"version https://git-lfs"):
        return False, f"{weights} is a Git LFS pointer, not the weights: run 'git lfs pull' in {path}"
    return True, f"CTranslate2 Whisper model in {path} (model.bin {size / 1e6:.0f} MB)"


def probe_capabilities(speech_model_dir: str = "") -> Capabilities:
    """Probe everything in this process; the worker calls ``probe_in_subprocess`` instead."""
    gpus = probe_gpus()
    nvenc, nvenc_reason = probe_nvenc(gpus)
    nvdec, nvdec_reason = probe_nvdec(gpus)
    ready, model_reason = check_speech_model(speech_model_dir)
    return Capabilities(
        nvenc=nvenc,
        nvenc_reason=nvenc_reason,
        nvdec=nvdec,
        nvdec_reason=nvdec_reason,
        gpus=gpus,
        cpu_count=_cpu_count(),
        speech_model_ready=ready,
        speech_model=speech_model_dir,
        speech_model_reason=model_reason,
        encoders=_encoders(nvenc),
        version=aicut.__version__,
    )


def sample_resources(work_dir: Path) -> Resources:
    """Memory, the disk holding ``work_dir`` (created if missing) and the 1-minute load average."""
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    memory = psutil.virtual_memory()
    disk = shutil.disk_usage(work_dir)
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not on Windows
        load = 0.0
    return Resources(
        memory_total_bytes=int(memory.total),
        memory_available_bytes=int(memory.available),
        disk_total_bytes=int(disk.total),
        disk_free_bytes=int(disk.free),
        load_avg_1m=float(load),
    )


# --- JSON ----------------------------------------------------------------------------------------------------------


def capabilities_to_json(c: Capabilities) -> str:
    """One line of JSON (what the probe child prints)."""
    return json.dumps(dataclasses.asdict(c), separators=(",", ":"))


def capabilities_from_json(s: str) -> Capabilities:
    """Parse ``capabilities_to_json`` output; raises ValueError when it is not that."""
    try:
        d = json.loads(s)
        return Capabilities(
            nvenc=bool(d["nvenc"]),
            nvenc_reason=str(d["nvenc_reason"]),
            nvdec=bool(d["nvdec"]),
            nvdec_reason=str(d["nvdec_reason"]),
            gpus=tuple(
                Gpu(int(g["index"]), str(g["name"]), int(g["memory_total_bytes"]), int(g["memory_free_bytes"]))
                for g in d["gpus"]
            ),
            cpu_count=int(d["cpu_count"]),
            speech_model_ready=bool(d["speech_model_ready"]),
            speech_model=str(d["speech_model"]),
            speech_model_reason=str(d["speech_model_reason"]),
            encoders=tuple(str(e) for e in d["encoders"]),
            version=str(d["version"]),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a capabilities object: {exc!r}") from exc


# --- the probe in a child process ----------------------------------------------------------------------------------


def _probe_command(speech_model_dir: str) -> list[str]:
    """The argv of the probe child."""
    # "--opt=value" so a directory that starts with "-" is not taken for an option.
    return [sys.executable, "-m", "aicut.worker.capabilities", f"--speech-model={speech_model_dir}"]


def _child_env() -> dict[str, str]:
    # The child must import this same aicut even when the worker was started from a source tree, not an install.
    env = dict(os.environ)
    root = str(Path(aicut.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


def _parse_child_output(stdout: bytes) -> Capabilities | None:
    # The JSON is the last line that parses; anything a native library printed around it is ignored.
    for line in reversed(stdout.decode("utf-8", "replace").splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return capabilities_from_json(line)
            except ValueError:
                continue
    return None


def _fallback(speech_model_dir: str, why: str) -> Capabilities:
    """What the parent can tell without touching the NVIDIA libraries."""
    ready, model_reason = check_speech_model(speech_model_dir)
    return Capabilities(
        nvenc=False,
        nvenc_reason=_reason(f"{why}; NVENC not used"),
        nvdec=False,
        nvdec_reason=_reason(f"{why}; NVDEC not used"),
        gpus=(),
        cpu_count=_cpu_count(),
        speech_model_ready=ready,
        speech_model=speech_model_dir,
        speech_model_reason=model_reason,
        encoders=_encoders(False),
        version=aicut.__version__,
    )


def _describe_exit(returncode: int, stderr: bytes) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"capability probe crashed (killed by {name})"
    lines = [line for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    tail = f": {_one_line(lines[-1], 120)}" if lines else ""
    return f"capability probe failed (exit code {returncode}{tail})"


async def probe_in_subprocess(speech_model_dir: str, timeout_s: float = 60.0) -> Capabilities:
    """Run the probe in a child process, so a native crash or hang in the NVIDIA libraries cannot hurt the worker."""
    argv = _probe_command(speech_model_dir)
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_child_env(),
    )
    try:
        try:
            stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout_s)
        except asyncio.TimeoutError:
            logger.warning("capability probe (pid %d) timed out after %g s; killing it", proc.pid, timeout_s)
            return _fallback(speech_model_dir, f"capability probe timed out after {timeout_s:g} s")
    finally:
        # Also on cancellation: never leave a probe child behind.
        if proc.returncode is None:
            proc.kill()
            try:
                # Drain the pipes so their transports close before the loop does.
                await asyncio.wait_for(proc.communicate(), 5.0)
            except asyncio.TimeoutError:  # a grandchild holds the pipes; the child itself is dead
                pass
    if stderr.strip():
        logger.debug("capability probe stderr:\n%s", stderr.decode("utf-8", "replace").rstrip())
    if proc.returncode != 0:
        why = _describe_exit(proc.returncode, stderr)
        logger.warning("%s; falling back to CPU-only capabilities", why)
        return _fallback(speech_model_dir, why)
    caps = _parse_child_output(stdout)
    if caps is None:
        why = "capability probe printed no capabilities JSON"
        logger.warning("%s; falling back to CPU-only capabilities", why)
        return _fallback(speech_model_dir, why)
    return caps


# --- python -m aicut.worker.capabilities ---------------------------------------------------------------------------


def _flush_c_stdio() -> None:
    # Native code may have printf'd into C's stdout buffer while fd 1 pointed at stderr; flush it there now.
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError, TypeError):
        pass


def main(argv: list[str] | None = None) -> int:
    """Print this machine's capabilities as one line of JSON on stdout."""
    parser = argparse.ArgumentParser(
        prog="python -m aicut.worker.capabilities",
        description="Probe NVENC, NVDEC, GPUs, CPUs, the speech model and encoders; print them as JSON.",
    )
    parser.add_argument("--speech-model", default="", metavar="DIR", help="the CTranslate2 Whisper model directory")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")

    # stdout carries exactly the JSON: while probing, fd 1 points at stderr, so whatever the NVIDIA libraries
    # print cannot corrupt it.
    sys.stdout.flush()
    saved_stdout = os.dup(1)
    os.dup2(2, 1)
    try:
        caps = probe_capabilities(args.speech_model)
    finally:
        sys.stdout.flush()
        _flush_c_stdio()
        os.dup2(saved_stdout, 1)
        os.close(saved_stdout)
    sys.stdout.write(capabilities_to_json(caps) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
