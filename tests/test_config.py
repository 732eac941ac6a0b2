"""machines.yaml, .env and the environment become frozen settings; secrets never show."""

from __future__ import annotations

from pathlib import Path

import pytest

from aicut.config import Secrets, WorkerEntry, load_settings, parse_size, parse_worker_entry
from aicut.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("text, expected", [
    ("localhost:8005:1", WorkerEntry("localhost:8005", 1)),
    ("192.168.1.100:8005:2    # remote GPU", WorkerEntry("192.168.1.100:8005", 2)),
    ("gpu-3:8007", WorkerEntry("gpu-3:8007", 1)),
    ({"address": "10.0.0.2:8005", "priority": 3, "slots": 2, "labels": ["gpu"]},
     WorkerEntry("10.0.0.2:8005", 3, 2, ("gpu",))),
])
def test_worker_entries(text: object, expected: WorkerEntry) -> None:
    assert parse_worker_entry(text) == expected


@pytest.mark.parametrize("bad", ["localhost", "host:port:x", {"priority": 1}, {"address": "h:1", "bogus": 1}, 42])
def test_bad_worker_entries_say_what_to_write(bad: object) -> None:
    with pytest.raises(ConfigError) as err:
        parse_worker_entry(bad)
    assert "workers" in err.value.message


@pytest.mark.parametrize("text, expected", [(123, 123), ("500MB", 500_000_000), ("2GiB", 2 * 2**30),
                                            ("1.5 GB", 1_500_000_000), ("10k", 10_000)])
def test_sizes(text: object, expected: int) -> None:
    assert parse_size(text) == expected  # type: ignore[arg-type]


def test_bad_size() -> None:
    with pytest.raises(ConfigError, match="500MB or 2GiB"):
        parse_size("lots")


def test_checkout_machines_yaml_is_the_seed_default() -> None:
    s = load_settings(ROOT / "machines.yaml", environ={})
    assert s.workers == (WorkerEntry("localhost:8005", 1),)
    assert s.worker.port == 8005 and s.worker.slots == 1
    assert "*.myqcloud.com" in s.fetch.allow_hosts


def test_flags_win_and_env_file_is_read(tmp_path: Path) -> None:
    machines = tmp_path / "m.yaml"
    machines.write_text("worker: {port: 9000, slots: 2, work_dir: w}\nfetch: {allow_hosts: [a.example], max_bytes: 1MB}\n")
    env = tmp_path / ".env"
    env.write_text("AICUT_CLUSTER_TOKEN=s3cret-token\nAICUT_ADMIN_USERNAME=admin\nAICUT_ADMIN_PASSWORD=pw\n")
    s = load_settings(machines, env_file=env, environ={}, port=9100)
    assert (s.worker.port, s.worker.slots) == (9100, 2)
    assert s.worker.work_dir == (tmp_path / "w").resolve()
    assert s.fetch.allow_hosts == ("a.example",) and s.fetch.max_bytes == 1_000_000
    assert s.secrets.cluster_token == "s3cret-token"
    assert (s.secrets.forum_username, s.secrets.forum_password) == ("admin", "pw")
    # the environment wins over the file
    assert load_settings(machines, env_file=env, environ={"AICUT_CLUSTER_TOKEN": "x"}).secrets.cluster_token == "x"


def test_secrets_never_show() -> None:
    s = Secrets(cluster_token="tok-123", forum_password="pw-456")
    for text in (repr(s), str(s), repr(load_settings(ROOT / "machines.yaml", environ={}))):
        assert "tok-123" not in text and "pw-456" not in text
    assert "cluster_token=set" in repr(s)


@pytest.mark.parametrize("yaml_text, match", [
    ("worker: {prot: 1}\n", "unknown key"),
    ("worker: [1]\n", "must be a mapping"),
    ("worker: {slots: 0}\n", "at least 1"),
    ("- a\n", "top level"),
    ("workers: [\"x\"]\n", "host:port"),
    ("a: [\n", "not valid YAML"),
])
def test_bad_files_get_clear_errors(tmp_path: Path, yaml_text: str, match: str) -> None:
    machines = tmp_path / "m.yaml"
    machines.write_text(yaml_text)
    with pytest.raises(ConfigError, match=match):
        load_settings(machines, environ={})


def test_missing_machines_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml", environ={})


def test_forum_and_publish_sections(tmp_path: Path) -> None:
    path = tmp_path / "machines.yaml"
    path.write_text("forum:\n  base_url: https://bbs.example.com/bbs/forum.php\n  boards: [2, 36]\n"
                    "  poll_interval_s: 5\n  baseline: false\npublish:\n  kind: directory\n  path: pub\n"
                    "  base_url: https://cdn.example.com/v\n  form_fields: {filetype: video, region: gz}\n")
    s = load_settings(path, env_file=tmp_path / "none.env",
                      environ={"AICUT_ADMIN_USERNAME": "bot", "AICUT_ADMIN_PASSWORD": "pw"})
    assert s.forum.base_url == "https://bbs.example.com/bbs/" and s.forum.boards == (2, 36)
    assert s.forum.poll_interval_s == 5.0 and s.forum.baseline is False
    assert s.publish.kind == "directory" and s.publish.path == str((tmp_path / "pub").resolve())
    assert s.publish.form_fields == (("filetype", "video"), ("region", "gz"))
    assert (s.secrets.forum_username, s.secrets.forum_password) == ("bot", "pw")   # the seed's variable names


@pytest.mark.parametrize(("yaml_text", "match"), [
    ("forum:\n  base_url: bbs.example.com\n", "must be an http"),
    ("forum:\n  base_url: https://bbs.example.com/\n  boards: []\n", "at least one board"),
    ("publish:\n  kind: ftp\n", "plugin, attachment or directory"),
    ("forum:\n  base_url: https://b.example.com/\npublish:\n  kind: directory\n", "publish.path"),
    ("forum:\n  polling: 3\n", "unknown key"),
])
def test_bad_forum_settings_say_what_to_write(tmp_path: Path, yaml_text: str, match: str) -> None:
    path = tmp_path / "machines.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError, match=match):
        load_settings(path, env_file=tmp_path / "none.env", environ={})
