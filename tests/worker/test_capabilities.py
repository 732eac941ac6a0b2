"""Tests for aicut.worker.capabilities: the probes, the speech-model check, JSON, and the probe child."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import psutil
import pytest

import aicut
from aicut.worker import capabilities as capmod
from aicut.worker.capabilities import (
    Capabilities,
    Gpu,
    capabilities_from_json,
    capabilities_to_json,
    check_speech_model,
    probe_capabilities,
    probe_gpus,
    probe_in_subprocess,
    probe_nvenc,
    sample_resources,
)

GPUS = probe_gpus()
HAS_GPU = bool(GPUS)
needs_no_gpu = pytest.mark.skipif(HAS_GPU, reason="checks the no-NVIDIA-driver answers; this machine has a GPU")
needs_gpu = pytest.mark.skipif(not HAS_GPU, reason="needs an NVIDIA GPU and driver (NVML found none)")


def _complete_model_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "model.bin").write_bytes(b"\x00" * 1024)
    (path / "config.json").write_text("{}")
    (path / "tokenizer.json").write_text("{}")
    (path / "vocabulary.json").write_text("[]")
    return path


def _one_short_line(reason: str) -> bool:
    return bool(reason) and "\n" not in reason and len(reason) <= 240


# --- no driver -------------------------------------------------------------------------------------------------------


@needs_no_gpu
def test_probe_nvenc_without_driver_says_why_in_one_line() -> None:
    ok, reason = probe_nvenc()
    assert ok is False
    assert _one_short_line(reason), reason
    assert "libnvidia-encode.so.1" in reason
    assert "driver" in reason
    assert "TROUBLESHOOTING" not in reason


@needs_no_gpu
def test_probe_nvdec_without_driver_says_why_in_one_line() -> None:
    ok, reason = capmod.probe_nvdec()
    assert ok is False
    assert _one_short_line(reason), reason
    assert "driver" in reason


@needs_no_gpu
def test_probe_gpus_without_driver_is_empty() -> None:
    assert probe_gpus() == ()


@needs_no_gpu
def test_probe_capabilities_without_driver_is_cpu_only() -> None:
    caps = probe_capabilities()
    assert caps.nvenc is False and caps.nvdec is False
    assert caps.gpus == ()
    assert caps.encoders == ("x264",)
    assert caps.cpu_count >= 1
    assert caps.version == aicut.__version__
    assert caps.speech_model_ready is False
    assert caps.speech_model_reason == "no speech model configured"


def test_x264_is_listed_when_pyav_has_it() -> None:
    caps = probe_capabilities()
    assert ("x264" in caps.encoders) == capmod._x264_available()
    assert caps.encoders == (("nvenc",) if caps.nvenc else ()) + (("x264",) if capmod._x264_available() else ())


# --- speech model ----------------------------------------------------------------------------------------------------


def test_speech_model_not_configured() -> None:
    assert check_speech_model("") == (False, "no speech model configured")


def test_speech_model_missing_dir(tmp_path: Path) -> None:
    ok, reason = check_speech_model(str(tmp_path / "nope"))
    assert ok is False
    assert reason == f"speech model directory {tmp_path / 'nope'} does not exist"


def test_speech_model_path_is_a_file(tmp_path: Path) -> None:
    f = tmp_path / "model.bin"
    f.write_bytes(b"x")
    ok, reason = check_speech_model(str(f))
    assert ok is False and "is not a directory" in reason


def test_speech_model_lists_exactly_the_missing_files(tmp_path: Path) -> None:
    d = tmp_path / "whisper"
    d.mkdir()
    (d / "config.json").write_text("{}")
    ok, reason = check_speech_model(str(d))
    assert ok is False
    missing = "model.bin, tokenizer.json, vocabulary.json or vocabulary.txt"
    assert reason == f"speech model directory {d} is missing {missing}"

    (d / "model.bin").write_bytes(b"\x00" * 10)
    (d / "vocabulary.txt").write_text("a\n")
    ok, reason = check_speech_model(str(d))
    assert ok is False
    assert reason == f"speech model directory {d} is missing tokenizer.json"


def test_speech_model_complete_dir(tmp_path: Path) -> None:
    d = _complete_model_dir(tmp_path / "whisper")
    ok, reason = check_speech_model(str(d))
    assert ok is True, reason
    assert str(d) in reason and _one_short_line(reason)


def test_speech_model_vocabulary_txt_is_enough(tmp_path: Path) -> None:
    d = _complete_model_dir(tmp_path / "whisper")
    (d / "vocabulary.json").unlink()
    (d / "vocabulary.txt").write_text("a\n")
    assert check_speech_model(str(d))[0] is True


def test_speech_model_git_lfs_pointer_and_empty_weights(tmp_path: Path) -> None:
    d = _complete_model_dir(tmp_path / "whisper")
    (d / "model.bin").write_text("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 3087284237\n")
    ok, reason = check_speech_model(str(d))
    assert ok is False and "Git LFS pointer" in reason and "git lfs pull" in reason

    (d / "model.bin").write_bytes(b"")
    ok, reason = check_speech_model(str(d))
    assert ok is False and reason.endswith("is empty")


def test_probe_capabilities_carries_the_speech_model(tmp_path: Path) -> None:
    d = _complete_model_dir(tmp_path / "whisper")
    caps = probe_capabilities(str(d))
    assert caps.speech_model == str(d)
    assert caps.speech_model_ready is True


# --- JSON ------------------------------------------------------------------------------------------------------------


def test_json_round_trip() -> None:
    caps = Capabilities(
        nvenc=True,
        nvenc_reason="h264 NVENC on GPU 0 (NVIDIA L4)",
        nvdec=True,
        nvdec_reason="h264 NVDEC on GPU 0 (NVIDIA L4): 4 engine(s), up to 4096x4096",
        gpus=(Gpu(0, "NVIDIA L4", 24_000_000_000, 23_000_000_000), Gpu(1, "NVIDIA L4", 24_000_000_000, 1)),
        cpu_count=16,
        speech_model_ready=True,
        speech_model="/models/whisper-small-ct2",
        speech_model_reason="CTranslate2 Whisper model in /models/whisper-small-ct2 (model.bin 484 MB)",
        encoders=("nvenc", "x264"),
        version="9.9.9",
    )
    text = capabilities_to_json(caps)
    assert "\n" not in text
    assert capabilities_from_json(text) == caps


def test_json_round_trip_of_a_real_probe() -> None:
    caps = probe_capabilities()
    assert capabilities_from_json(capabilities_to_json(caps)) == caps


@pytest.mark.parametrize("text", ["[]", '{"nvenc": false}', "null"])
def test_json_rejects_what_is_not_capabilities(text: str) -> None:
    with pytest.raises(ValueError):
        capabilities_from_json(text)


# --- resources -------------------------------------------------------------------------------------------------------


def test_sample_resources_is_sane_and_creates_the_work_dir(tmp_path: Path) -> None:
    work = tmp_path / "var" / "work"
    res = sample_resources(work)
    assert work.is_dir()
    assert 0 < res.memory_available_bytes <= res.memory_total_bytes
    assert 0 <= res.disk_free_bytes <= res.disk_total_bytes
    assert res.disk_total_bytes > 0
    assert res.load_avg_1m >= 0.0


# --- the probe child -------------------------------------------------------------------------------------------------


async def test_probe_in_subprocess_gives_the_in_process_answer(tmp_path: Path) -> None:
    d = _complete_model_dir(tmp_path / "whisper")
    caps = await probe_in_subprocess(str(d), timeout_s=60.0)
    assert (caps.nvenc, caps.nvenc_reason) == probe_nvenc()
    assert caps.speech_model == str(d) and caps.speech_model_ready is True
    assert caps.encoders == probe_capabilities().encoders
    assert caps.cpu_count >= 1
    assert caps.version == aicut.__version__


async def test_probe_in_subprocess_speech_model_dir_starting_with_dash(tmp_path: Path) -> None:
    caps = await probe_in_subprocess("-not-a-dir", timeout_s=60.0)
    assert caps.speech_model == "-not-a-dir"
    assert caps.speech_model_reason == "speech model directory -not-a-dir does not exist"


def _assert_cpu_only_fallback(caps: Capabilities, model_dir: Path, why: str) -> None:
    assert caps.nvenc is False and caps.nvdec is False
    assert why in caps.nvenc_reason and why in caps.nvdec_reason
    assert _one_short_line(caps.nvenc_reason) and _one_short_line(caps.nvdec_reason)
    assert caps.gpus == ()
    assert caps.cpu_count >= 1
    assert caps.encoders == (("x264",) if capmod._x264_available() else ())
    assert caps.speech_model == str(model_dir) and caps.speech_model_ready is True
    assert caps.version == aicut.__version__


async def test_probe_in_subprocess_survives_a_crashing_child(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = _complete_model_dir(tmp_path / "whisper")
    kill_self = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    monkeypatch.setattr(capmod, "_probe_command", lambda model_dir: [sys.executable, "-c", kill_self])
    caps = await probe_in_subprocess(str(d))
    _assert_cpu_only_fallback(caps, d, "capability probe crashed (killed by SIGKILL)")


async def test_probe_in_subprocess_survives_a_failing_child(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = _complete_model_dir(tmp_path / "whisper")
    fail = "import sys; sys.stderr.write('Traceback...\\nRuntimeError: boom\\n'); sys.exit(3)"
    monkeypatch.setattr(capmod, "_probe_command", lambda model_dir: [sys.executable, "-c", fail])
    caps = await probe_in_subprocess(str(d))
    _assert_cpu_only_fallback(caps, d, "capability probe failed (exit code 3: RuntimeError: boom)")


async def test_probe_in_subprocess_survives_a_hanging_child(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = _complete_model_dir(tmp_path / "whisper")
    hang = "import time; time.sleep(60)"
    monkeypatch.setattr(capmod, "_probe_command", lambda model_dir: [sys.executable, "-c", hang])
    caps = await probe_in_subprocess(str(d), timeout_s=0.5)
    _assert_cpu_only_fallback(caps, d, "capability probe timed out after 0.5 s")


async def test_probe_in_subprocess_ignores_noise_and_rejects_no_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = _complete_model_dir(tmp_path / "whisper")
    real = capabilities_to_json(probe_capabilities(str(d)))
    noisy = f"print('native library chatter'); print({real!r}); print('more chatter')"
    monkeypatch.setattr(capmod, "_probe_command", lambda model_dir: [sys.executable, "-c", noisy])
    assert await probe_in_subprocess(str(d)) == capabilities_from_json(real)

    monkeypatch.setattr(capmod, "_probe_command", lambda model_dir: [sys.executable, "-c", "print('hello')"])
    caps = await probe_in_subprocess(str(d))
    _assert_cpu_only_fallback(caps, d, "capability probe printed no capabilities JSON")


async def test_cancelling_probe_in_subprocess_kills_the_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid_file = tmp_path / "pid"
    hang = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    monkeypatch.setattr(capmod, "_probe_command", lambda model_dir: [sys.executable, "-c", hang])
    task = asyncio.create_task(probe_in_subprocess("", timeout_s=60.0))
    for _ in range(200):
        await asyncio.sleep(0.05)
        if pid_file.exists() and pid_file.read_text():
            break
    pid = int(pid_file.read_text())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Killed and reaped: no process, not even a zombie, is left with that pid.
    assert not psutil.pid_exists(pid)


# --- with an NVIDIA GPU ----------------------------------------------------------------------------------------------


@needs_gpu
async def test_nvenc_matches_the_gpu() -> None:
    # In the child, as the worker does it: a native crash here must fail the test, not kill pytest.
    caps = await probe_in_subprocess("", timeout_s=120.0)
    assert caps.gpus, caps
    assert _one_short_line(caps.nvenc_reason), caps.nvenc_reason
    if capmod._NO_NVENC_GPU.search(caps.gpus[0].name):
        # A100/H100/H200-class: NVDEC but no NVENC (PRIOR_ART.md §5).
        assert caps.nvenc is False, caps.nvenc_reason
        # "no NVENC" from the encoder attempt; the library reason if the container lacks the driver's video part.
        assert "no NVENC" in caps.nvenc_reason or "libnvidia-encode" in caps.nvenc_reason
        assert caps.encoders[:1] != ("nvenc",)
    else:
        assert caps.nvenc is True, caps.nvenc_reason
        assert caps.encoders[0] == "nvenc"


@needs_gpu
async def test_nvdec_works_on_any_gpu() -> None:
    # Every GPU PyNvVideoCodec supports (Turing and newer, A100/H100/H200 included) decodes 8-bit H.264.
    caps = await probe_in_subprocess("", timeout_s=120.0)
    assert caps.nvdec is True, caps.nvdec_reason
    assert _one_short_line(caps.nvdec_reason)
