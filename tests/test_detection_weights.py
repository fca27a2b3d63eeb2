"""Model files: known downloads (sha256-checked, through a file:// URL here; nothing is fetched
from the network), the one line that says where to put a file when offline, and the cache."""
from __future__ import annotations

import hashlib
import logging
import threading

import pytest

from conftest import shared_path
from pipeline.params import ConfigError
from pipeline.stage import SourceInfo, StageContext
from stages.detection import weights
from stages.detection.weights import Known, ModelError, fetch, resolve


def test_known_table_is_well_formed():
    for name, known in weights.KNOWN.items():
        assert known.url.startswith("https://") and known.url.endswith(name)
        assert len(known.sha256) == 64 and int(known.sha256, 16) >= 0 and known.size > 0


def _local_known(tmp_path, payload=b"model bytes", sha=None):
    src = tmp_path / "src.onnx"
    src.write_bytes(payload)
    return Known(src.as_uri(), sha or hashlib.sha256(payload).hexdigest(), len(payload), "yolox")


def test_fetch_checks_sha256_and_caches(tmp_path):
    known = _local_known(tmp_path)
    dest = tmp_path / "cache" / "m.onnx"
    assert fetch(known, dest) == dest and dest.read_bytes() == b"model bytes"
    assert not dest.with_name("m.onnx.part").exists()


def test_fetch_rejects_wrong_digest_and_leaves_nothing(tmp_path):
    known = _local_known(tmp_path, sha="0" * 64)
    dest = tmp_path / "cache" / "m.onnx"
    with pytest.raises(ModelError, match=r"sha256 [0-9a-f]{64}, expected 11 bytes with sha256 0{64}; put the file"):
        fetch(known, dest)
    assert not dest.exists() and not dest.with_name("m.onnx.part").exists()


def test_unreachable_url_says_where_to_put_the_file(tmp_path):
    known = Known("http://127.0.0.1:9/yolox_nano.onnx", "a" * 64, 10, "yolox")  # port 9: nothing listens
    dest = tmp_path / "cache" / "yolox_nano.onnx"
    with pytest.raises(ModelError) as info:
        fetch(known, dest, timeout=0.5)
    text = str(info.value)
    assert "\n" not in text and text.startswith("cannot download http://127.0.0.1:9/yolox_nano.onnx (")
    assert text.endswith(f"offline: put the file (sha256 {'a' * 64}) at {dest} by hand")


def test_resolve_known_name_without_download(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelError) as info:
        resolve("models/yolox_nano.onnx", "onnx", download=False, cache=tmp_path / "cache")
    text = str(info.value)
    assert "not found" in text and weights.KNOWN["yolox_nano.onnx"].url in text
    assert f"or {tmp_path / 'cache' / 'yolox_nano.onnx'}, or set download: true" in text


def test_resolve_uses_verified_cache(tmp_path, monkeypatch):
    known = _local_known(tmp_path)
    monkeypatch.setitem(weights.KNOWN, "tiny.onnx", known)
    cache = tmp_path / "cache"
    got = resolve(tmp_path / "absent" / "tiny.onnx", "onnx", download=True, cache=cache)
    assert got == cache / "tiny.onnx"
    assert resolve(tmp_path / "absent" / "tiny.onnx", "onnx", cache=cache) == got  # cached, no download
    got.write_bytes(b"tampered!!!")
    with pytest.raises(ModelError, match="has sha256 .* expected .* delete it and download again"):
        resolve(tmp_path / "absent" / "tiny.onnx", "onnx", cache=cache)


def test_stage_downloads_a_known_model(tmp_path, monkeypatch):
    """The detect stage, given a missing known file and download: true, fetches (here from a
    file:// copy of the shared model), checks the digest, and runs from the cache."""
    from stages.detect import DetectParams, DetectStage

    src = shared_path("models", "yolox_nano", "yolox_nano.onnx")
    data = src.read_bytes()
    monkeypatch.setitem(weights.KNOWN, "yolox_nano.onnx",
                        Known(src.as_uri(), hashlib.sha256(data).hexdigest(), len(data), "yolox"))
    ctx = StageContext("cpu", SourceInfo("t", 64, 64, 25, False), threading.Event(), logging.getLogger("t"))
    params = DetectParams(model=str(tmp_path / "yolox_nano.onnx"), cache_dir=str(tmp_path / "cache"))
    with pytest.raises(ConfigError, match="or set download: true"):
        DetectStage(params).setup(ctx)
    params.download = True
    stage = DetectStage(params)
    stage.setup(ctx)
    assert stage.model.path == tmp_path / "cache" / "yolox_nano.onnx" and stage.info["head"] == "yolox"
