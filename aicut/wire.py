"""Conversions between the domain dataclasses (``aicut.models``) and the protobuf messages in ``generated/``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aicut import models
from generated.aicut.v1 import common_pb2 as pb
from generated.aicut.v1 import worker_pb2 as wpb

if TYPE_CHECKING:
    from aicut.worker.capabilities import Capabilities, Resources
    from generated.aicut.v1 import coordinator_pb2 as cpb


def source_to_pb(s: models.Source) -> pb.Source:
    return pb.Source(url=s.url, name=s.name, kind=pb.SourceKind.Value(s.kind.value))


def source_from_pb(s: pb.Source) -> models.Source:
    kind = pb.SourceKind.Name(s.kind)
    return models.Source(url=s.url, name=s.name,
                         kind=models.SourceKind.AUDIO if kind == "AUDIO" else models.SourceKind.VIDEO)


def task_to_pb(t: models.Task) -> pb.Task:
    spec = t.spec
    return pb.Task(
        id=t.id, attempt=t.attempt, kind=pb.TaskKind.Value(t.kind), thread_url=t.thread_url,
        spec=pb.TaskSpec(
            title=spec.title, sources=[source_to_pb(s) for s in spec.sources],
            cover=pb.CoverTitles(top=spec.cover.top, middle=spec.cover.middle, bottom=spec.cover.bottom),
            core_text=spec.core_text, category=spec.category, author=spec.author, tid=spec.tid, fid=spec.fid),
        options=pb.TaskOptions(language=t.options.language, burn_subtitles=t.options.burn_subtitles,
                               encoder=t.options.encoder, extra=dict(t.options.extra)),
    )


def task_from_pb(t: pb.Task) -> models.Task:
    s = t.spec
    kind = pb.TaskKind.Name(t.kind)
    return models.Task(
        id=t.id, attempt=t.attempt or 1, kind="SMART_CUT" if kind == "TASK_KIND_UNSPECIFIED" else kind,
        thread_url=t.thread_url,
        spec=models.TaskSpec(
            title=s.title, sources=tuple(source_from_pb(x) for x in s.sources),
            cover=models.CoverTitles(top=s.cover.top, middle=s.cover.middle, bottom=s.cover.bottom),
            core_text=s.core_text, category=s.category, author=s.author, tid=s.tid, fid=s.fid),
        options=models.TaskOptions(language=t.options.language, burn_subtitles=t.options.burn_subtitles,
                                   encoder=t.options.encoder, extra=dict(t.options.extra)),
    )


def media_to_pb(m: models.MediaInfo) -> pb.MediaInfo:
    return pb.MediaInfo(
        container=m.container, duration_s=m.duration_s, size_bytes=m.size_bytes,
        video=[pb.VideoStreamInfo(codec=v.codec, width=v.width, height=v.height, fps=v.fps, rotation=v.rotation,
                                  pix_fmt=v.pix_fmt, bit_rate=v.bit_rate) for v in m.video],
        audio=[pb.AudioStreamInfo(codec=a.codec, sample_rate=a.sample_rate, channels=a.channels, bit_rate=a.bit_rate)
               for a in m.audio],
    )


def result_to_pb(r: models.TaskResult) -> pb.TaskResult:
    return pb.TaskResult(
        sources=[pb.SourceResult(source=source_to_pb(s.source), media=media_to_pb(s.media), local_path=s.local_path,
                                 sha256=s.sha256) for s in r.sources],
        outputs=[pb.Output(name=o.name, kind=o.kind, path=o.path, url=o.url, size_bytes=o.size_bytes)
                 for o in r.outputs],
        stage_seconds=dict(r.stage_seconds), machine=r.machine, reply_url=r.reply_url, reply_note=r.reply_note,
    )


def capabilities_to_pb(c: Capabilities) -> wpb.Capabilities:
    return wpb.Capabilities(
        nvenc=c.nvenc, nvenc_reason=c.nvenc_reason, nvdec=c.nvdec, nvdec_reason=c.nvdec_reason,
        gpus=[wpb.Gpu(index=g.index, name=g.name, memory_total_bytes=g.memory_total_bytes,
                      memory_free_bytes=g.memory_free_bytes) for g in c.gpus],
        cpu_count=c.cpu_count, speech_model_ready=c.speech_model_ready, speech_model=c.speech_model,
        speech_model_reason=c.speech_model_reason, encoders=list(c.encoders), version=c.version,
    )


def resources_to_pb(r: Resources) -> wpb.Resources:
    return wpb.Resources(memory_total_bytes=r.memory_total_bytes, memory_available_bytes=r.memory_available_bytes,
                         disk_total_bytes=r.disk_total_bytes, disk_free_bytes=r.disk_free_bytes,
                         load_avg_1m=r.load_avg_1m)


def worker_state_pb(state: models.WorkerState) -> int:
    return wpb.WorkerState.Value(state.value)


def task_state_pb(state: models.TaskState) -> int:
    return pb.TaskState.Value(state.value)


def task_info(rec: models.TaskRecord, *, with_result: bool = True) -> cpb.TaskInfo:
    """A coordinator task record as the API shows it."""
    from google.protobuf import json_format

    from generated.aicut.v1 import coordinator_pb2 as cpb

    info = cpb.TaskInfo(
        id=rec.id, attempt=rec.attempt, state=task_state_pb(rec.state), worker=rec.worker, stage=rec.stage,
        percent=rec.percent, error_code=rec.error_code, error_message=rec.error_message, retryable=rec.retryable,
        origin=rec.origin, created_unix_ms=rec.created_ms, updated_unix_ms=rec.updated_ms,
        queued_unix_ms=rec.queued_ms, dispatched_unix_ms=rec.dispatched_ms, started_unix_ms=rec.started_ms,
        finished_unix_ms=rec.finished_ms, history=[line for line in rec.history.splitlines() if line])
    if rec.task_json:
        json_format.Parse(rec.task_json, info.task)
        info.task.attempt = rec.attempt
    if with_result and rec.result_json:
        json_format.Parse(rec.result_json, info.result)
    return info
