"""Webcam source, tested up to the device open (these machines have no camera): clear errors for
an absent, busy, forbidden or non-camera device; the requested settings reach the driver; the
obtained ones are reported; frames flow (a generated stream stands in for the device)."""
from __future__ import annotations

import errno
import logging
import threading

import av
import numpy as np
import pytest

from pipeline.errors import SourceError
from pipeline.params import ConfigError, build_or_raise
from pipeline.sources import SOURCES, infer_type
from pipeline.sources.webcam import WebcamParams, WebcamSource, device_path


@pytest.mark.parametrize("uri,path", [("0", "/dev/video0"), ("12", "/dev/video12"), ("/dev/video3", "/dev/video3")])
def test_device_path(uri, path):
    assert device_path(uri) == path


def test_absent_device_names_it():
    with pytest.raises(SourceError) as err:
        WebcamSource(WebcamParams(uri="/dev/video97")).open()
    assert str(err.value).startswith("camera not found: /dev/video97 (")


def test_not_a_camera():
    with pytest.raises(SourceError, match=r"not a V4L2 camera \(.*\): /dev/null"):
        WebcamSource(WebcamParams(uri="/dev/null")).open()


@pytest.mark.parametrize("code,message", [
    (errno.EBUSY, "camera busy (used by another program): "),
    (errno.EACCES, "camera not accessible (permission denied; is the user in the 'video' group?): "),
    (errno.EIO, "cannot open camera (Input/output error): "),
])
def test_open_errors_from_the_driver(tmp_path, monkeypatch, code, message):
    device = tmp_path / "video0"
    device.touch()

    def failing_open(*args, **kwargs):
        raise OSError(code, __import__("os").strerror(code))

    monkeypatch.setattr(av, "open", failing_open)
    with pytest.raises(SourceError) as err:
        WebcamSource(WebcamParams(uri=str(device))).open()
    assert str(err.value) == message + str(device)


def test_requested_settings_reach_the_driver_and_obtained_are_reported(tmp_path, monkeypatch, caplog):
    """The driver 'gives' 320x240 at 15 fps when 1280x720 at 30 was asked: both are logged."""
    device = tmp_path / "video0"
    device.touch()
    seen = {}
    real_open = av.open

    def fake_v4l2(path, mode="r", format=None, options=None, **kw):
        seen.update(path=path, format=format, options=dict(options or {}))
        return real_open("testsrc2=size=320x240:rate=15", format="lavfi")

    monkeypatch.setattr(av, "open", fake_v4l2)
    source = WebcamSource(WebcamParams(uri=str(device), width=1280, height=720, fps=30, input_format="mjpeg"))
    with caplog.at_level(logging.INFO, logger="vidpipe.sources"):
        info = source.open()
    assert seen == {"path": str(device), "format": "v4l2",
                    "options": {"video_size": "1280x720", "framerate": "30", "input_format": "mjpeg"}}
    assert (info.width, info.height, info.fps, info.live) == (320, 240, 15, True)
    assert "requested video_size=1280x720, framerate=30, input_format=mjpeg, obtained 320x240 at 15.00 fps" in caplog.text
    frames = [f for _, f in zip(range(5), source.frames(threading.Event()))]
    source.close()
    assert np.allclose([f.time for f in frames], np.arange(5) / 15)
    stats = source.stats()
    assert stats["obtained_width"] == 320 and stats["obtained_fps"] == 15


def test_params_checked():
    with pytest.raises(ConfigError, match="width/height: give both or neither"):
        build_or_raise(WebcamParams, {"uri": "0", "width": 640})


def test_registered_and_inferred():
    assert SOURCES["webcam"] == "pipeline.sources.webcam:WebcamSource"
    assert infer_type("/dev/video0") == "webcam" and infer_type(0) == "webcam"
    assert WebcamSource.live
