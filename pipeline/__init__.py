"""The engine: packet types, stage contract, registry, config, runner, sources, sinks, CLI."""
from .frame import Detections, Frame, Plane
from .params import ConfigError
from .stage import SourceInfo, Stage, StageContext

__all__ = ["ConfigError", "Detections", "Frame", "Plane", "SourceInfo", "Stage", "StageContext"]
