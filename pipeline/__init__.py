"""The engine: packet types, stage contract, registry, config, runner, sources, sinks, CLI."""
from .api import Pipeline
from .errors import PipelineError, SinkError, SourceError, StageError
from .frame import Detections, Frame, Plane
from .params import ConfigError
from .stage import SourceInfo, Stage, StageContext

__all__ = ["ConfigError", "Detections", "Frame", "Pipeline", "PipelineError", "Plane", "SinkError", "SourceError",
           "SourceInfo", "Stage", "StageContext", "StageError"]
