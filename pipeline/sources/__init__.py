"""Frame sources. SOURCES is the closed registry: `source.type` in YAML -> "module:Class"."""

SOURCES: dict[str, str] = {
    "file": "pipeline.sources.file:FileSource",
    "folder": "pipeline.sources.folder:FolderSource",
    "lavfi": "pipeline.sources.lavfi:LavfiSource",
    "rtsp": "pipeline.sources.rtsp:RtspSource",
    "webcam": "pipeline.sources.webcam:WebcamSource",
}


def infer_type(uri) -> str:
    """The source type a `source.uri` implies when `source.type` is omitted: rtsp/rtmp/http(s)
    streams -> rtsp, a directory -> folder, /dev/videoN or a camera index -> webcam, lavfi:... ->
    lavfi, anything else -> file."""
    import os
    import re

    if isinstance(uri, int) and not isinstance(uri, bool):
        return "webcam"
    text = str(uri)
    if re.match(r"^(rtsps?|rtmp|https?|udp|tcp|srt)://", text, re.I):
        return "rtsp"
    if text.startswith("lavfi:"):
        return "lavfi"
    if text.isdigit() or re.match(r"^/dev/video\d+$", text):
        return "webcam"
    if os.path.isdir(text):
        return "folder"
    return "file"
