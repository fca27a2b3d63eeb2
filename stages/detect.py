"""The `detect` stage: a YOLO-family detector (ONNX, TorchScript or torch.export file) on the
pipeline's device, batched across consecutive frames, fp16 on CUDA, writing Frame.detections.

Pre-processing, decoding and NMS all run on the device (stages.detection); only the kept boxes come
back to the host. The frame is uploaded once (`Frame.image_tensor`) and shared with other GPU stages.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Sequence

from pipeline.frame import Detections, Frame
from pipeline.params import ConfigError, Note, check_path, field_file_errors, param, suggest
from pipeline.stage import Stage, StageContext

_DEVICE = re.compile(r"^(auto|cpu|cuda|cuda:\d+)$")


@dataclass
class DetectParams:
    model: str = param(path="file", doc="model file: .onnx (backends torch, onnxruntime), .torchscript/.pt "
                                        "(torchscript), .pt2 (export); relative paths are taken from the working "
                                        "directory")
    backend: str = param("auto", choices=("auto", "torch", "onnxruntime", "torchscript", "export"),
                         doc="auto: from the file suffix; .onnx: torch (onnx2torch) on a GPU, onnxruntime on the CPU")
    head: str = param("auto", choices=("auto", "yolox", "fastestdet", "yolov8", "yolov5"),
                      doc="output decoder; auto: told from the output shape where only one head fits")
    classes: str | list[str] | None = param(None, path="file", doc="class names: a file (one per line) or a list; "
                                            "null: COCO's 80 names for an 80-class model")
    keep_classes: list[str] | None = param(None, doc="only these class names (null = all)")
    score_threshold: float = param(0.3, ge=0, le=1, doc="lowest score kept (YOLOX/YOLOv5: obj * cls)")
    iou_threshold: float = param(0.45, gt=0, le=1, doc="NMS: a box overlapping a better one of its class by more is dropped")
    class_agnostic: bool = param(False, doc="NMS across classes instead of within each class")
    max_detections: int = param(300, ge=1, doc="most boxes kept per frame")
    max_candidates: int = param(4096, ge=1, doc="most boxes per frame entering NMS (the best scores)")
    input_size: int | tuple[int, int] | None = param(None, doc="network input [height, width] (or one side); "
                                                     "null: from the model file, else the head's usual size")
    resize: str = param("auto", choices=("auto", "letterbox", "letterbox_center", "stretch"),
                        doc="auto: the head's (YOLOX letterbox top-left, YOLOv5/v8 centred, FastestDet stretch)")
    channels: str = param("auto", choices=("auto", "bgr", "rgb"), doc="auto: the head's (YOLOX/FastestDet BGR, Ultralytics RGB)")
    pixel_scale: float | None = param(None, gt=0, doc="multiply pixels by this (null: the head's, 1 for YOLOX, 1/255 others)")
    pad_value: float = param(114.0, ge=0, le=255, doc="letterbox padding, 0..255")
    batch: int = param(1, ge=1, le=256, doc="frames per forward pass (a live stream waits at most max_wait)")
    max_wait: float = param(0.05, ge=0, le=10, doc="seconds to wait for a batch to fill")
    half: bool | Literal["auto"] = param("auto", doc="fp16 (torch backends on CUDA); auto: on CUDA only")
    device: str = param("auto", doc="auto (the pipeline's) | cpu | cuda | cuda:N")
    cuda_graphs: bool = param(False, doc="torch backends on CUDA: replay the forward pass as a CUDA graph (one "
                              "per batch shape, up to 4); works for TorchScript/export files, not for ONNX "
                              "graphs converted by onnx2torch (their shape ops copy from the host): eager then")
    trace: bool = param(True, doc="torch backend (ONNX converted by onnx2torch): run the forward pass as one "
                        "TorchScript trace per input shape (checked against eager on its first call): no "
                        "Python dispatch per layer (~5 ms per call here); not with cuda_graphs")
    download: bool = param(False, doc="fetch a known official model file (sha256-checked) into the cache when missing")
    cache_dir: str | None = param(None, doc="download cache (null: $VIDPIPE_CACHE or ~/.cache/vidpipe/models)")

    def validate(self) -> list[str]:
        errors = []
        if not _DEVICE.match(self.device):
            errors.append(f"device: expected auto, cpu, cuda or cuda:N, got {self.device!r}")
        size = (self.input_size,) * 2 if isinstance(self.input_size, int) else self.input_size
        if size is not None and any(s < 32 or s % 32 for s in size):
            errors.append(f"input_size: expected multiples of 32 (>= 32), got {self.input_size}")
        if self.half is True and self.backend == "onnxruntime":
            errors.append("half: true needs a torch backend (onnxruntime runs the file's own precision)")
        return errors

    def check_files(self) -> list[str]:
        """`model` by the rules of stages.detection.weights.resolve (`~` expanded): the file itself,
        else, for a known official model, its sha256-checked copy in the cache, else with
        `download: true` a Note (the run fetches it); `classes` when it names a file."""
        import os
        from pathlib import Path

        from stages.detection import weights

        lines = field_file_errors(self, skip=("model", "classes"))
        if isinstance(self.classes, str):
            problem = check_path(os.path.expanduser(self.classes), "file")
            lines += [f"classes: {problem}"] if problem else []
        path = os.path.expanduser(self.model)
        known = weights.KNOWN.get(Path(path).name)
        problem = check_path(path, "file")
        if problem is None or known is None or os.path.exists(path):
            return lines + ([f"model: {problem}"] if problem else [])
        cached = (Path(self.cache_dir) if self.cache_dir else weights.cache_dir()) / Path(path).name
        if cached.is_file():
            try:
                weights.verify(cached, known)
            except weights.ModelError as exc:
                lines.append(f"model: {exc}")
        elif self.download:
            lines.append(Note(f"model: {self.model} is not here: the run downloads it from {known.url} "
                              f"into {cached} (download: true)"))
        else:
            lines.append(f"model: {problem}; it is published at {known.url} (sha256 {known.sha256}): put it at "
                         f"{self.model} or {cached}, or set download: true")
        return lines


def resolve_device(wanted: str, context_device: str | None):
    import torch

    name = context_device if wanted == "auto" else wanted
    if name in (None, "", "auto"):
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device: {name!r} requested but CUDA is not available (use auto or cpu)")
    device = torch.device(name)
    if device.type == "cuda" and device.index is None:  # one key for Frame.image_tensor's shared upload
        device = torch.device("cuda", torch.cuda.current_device())
    return device


class DetectStage(Stage):
    type_name = "detect"
    Params = DetectParams
    writes = frozenset({"detections"})
    input_views = True  # keeps no input array past process() (Stage.input_views)

    def __init__(self, params: DetectParams | None = None, name: str | None = None) -> None:
        super().__init__(params, name)
        self.batch_size = self.params.batch
        self.max_wait = self.params.max_wait
        self.model = None
        self.info: dict = {}
        self._traced = None      # the forward pass's TracedCall (torch backend, trace: true)

    def _fail(self, message: str):
        return ConfigError(f"{self.name}: {message}")

    def setup(self, context: StageContext) -> None:
        super().setup(context)
        from pathlib import Path

        import torch

        from stages.detection import backends, heads, weights
        from stages.detection.names import class_names

        p = self.params
        device = resolve_device(p.device, context.device)
        try:
            kind = backends.file_kind(Path(p.model), p.backend)
            path = weights.resolve(p.model, kind, p.download, Path(p.cache_dir) if p.cache_dir else None)
            backend = backends.backend_for(path, p.backend, device.type)
            half = (device.type == "cuda") if p.half == "auto" else bool(p.half)
            model = backends.load(path, backend, device, half)
            input_hw = self._input_hw(model, path, heads)
            try:
                shape = model.probe(input_hw, p.batch)
            except weights.ModelError:
                if model.dtype != torch.float16:
                    raise
                context.logger.warning("%s: %s does not run in fp16; using fp32", self.name, path.name)
                model.to_float()
                shape = model.probe(input_hw, p.batch)
            head_name = heads.detect_head(shape, input_hw) if p.head == "auto" else p.head
            num_classes = heads.check_output(head_name, shape, input_hw)
            names = class_names(p.classes, num_classes)
        except (weights.ModelError, heads.HeadError) as exc:
            message = str(exc)
            raise self._fail(message if message.startswith("model file") else f"model file {p.model}: {message}") from None
        except ValueError as exc:
            raise self._fail(str(exc)) from None
        self.model, self.names, self.input_hw = model, names, input_hw
        graphs = self._graphs(model, input_hw, context)
        if p.trace and model.backend == "torch" and not graphs:
            from pipeline.traced import TracedCall

            stat = path.stat()
            self._traced = model.wrap_run(lambda forward: TracedCall(
                forward, f"{self.name}: trace", tolerance=1e-3 if half else 1e-4,
                max_cache=p.batch + 2,                     # every partial batch size has its own
                share=("detect", str(path.resolve()), stat.st_mtime_ns, stat.st_size, str(model.device),
                       str(model.dtype), input_hw)))
        self.head = heads.HEADS[head_name]
        recipe = self.head.recipe
        self.resize = recipe.resize if p.resize == "auto" else p.resize
        self.rgb = recipe.rgb if p.channels == "auto" else p.channels == "rgb"
        self.scale = recipe.scale if p.pixel_scale is None else p.pixel_scale
        self.keep = self._keep_mask(names, device)
        if self._traced is not None:
            self._prime(repeat=2 if device.type == "cuda" else 1)
        self.info = {"model": path.name, "backend": model.backend, "device": str(device),
                     "dtype": str(model.dtype).replace("torch.", ""), "head": head_name,
                     "input": f"{input_hw[0]}x{input_hw[1]}", "classes": len(names), "batch": p.batch,
                     "cuda_graphs": graphs,
                     "one_by_one": model.max_batch == 1 and p.batch > 1}
        context.logger.info("%s: %s", self.name, ", ".join(f"{k} {v}" for k, v in self.info.items()))

    def _prime(self, repeat: int) -> None:
        """Trace the forward pass for every batch size 1..batch now, on random pixels (on CUDA twice:
        TorchScript optimizes on the second call): a partial batch (the start or end of a stream, a
        live source) would otherwise stall on its first trace."""
        import torch

        model = self.model
        pixels = torch.rand((self.params.batch, 3, *self.input_hw), generator=torch.Generator().manual_seed(0))
        x = (pixels * 255 * self.scale).to(model.device, model.dtype)
        for b in range(1, self.params.batch + 1):
            for _ in range(repeat):
                model(x[:b])
        if model.device.type == "cuda":
            torch.cuda.synchronize(model.device)

    def _input_hw(self, model, path, heads) -> tuple[int, int]:
        p = self.params
        wanted = (p.input_size,) * 2 if isinstance(p.input_size, int) else p.input_size
        fixed = model.input_hw
        if model.input_shape is not None and len(model.input_shape) == 4 and model.input_shape[1] not in (None, 3):
            raise heads.HeadError(f"model file {path} takes input {model.input_shape}; a detector here takes "
                                  f"3-channel images (B,3,H,W)")
        if wanted is not None and fixed is not None and tuple(wanted) != fixed:
            raise heads.HeadError(f"model file {path} takes input {fixed[0]}x{fixed[1]} "
                                  f"(shape {model.input_shape}), but input_size is {wanted[0]}x{wanted[1]}; "
                                  f"remove input_size or export the model at that size")
        if wanted is not None:
            return tuple(wanted)
        if fixed is not None:
            return fixed
        if p.head != "auto":
            return heads.HEADS[p.head].recipe.default_size
        return (640, 640)

    def _graphs(self, model, input_hw, context) -> bool:
        """Capture the forward pass for the configured batch now (not on the first frame)."""
        import torch

        if not (self.params.cuda_graphs and model.device.type == "cuda" and model.module is not None):
            return False
        model.use_cuda_graphs()
        model(torch.zeros((self.params.batch, 3, *input_hw), dtype=model.dtype, device=model.device))
        if model.graphed.failure:
            context.logger.warning("%s: CUDA graph capture failed (%s); running eagerly", self.name,
                                   model.graphed.failure)
            return False
        return True

    def _keep_mask(self, names, device):
        import torch

        wanted = self.params.keep_classes
        if wanted is None:
            return None
        unknown = [n for n in wanted if n not in names]
        if unknown:
            raise self._fail(f"keep_classes: unknown class {unknown[0]!r}{suggest(unknown[0], names)}; "
                             f"the model's classes are {', '.join(names[:12])}{', ...' if len(names) > 12 else ''}")
        mask = torch.zeros(len(names), dtype=torch.bool, device=device)
        mask[[names.index(n) for n in wanted]] = True
        return mask

    def process(self, frame: Frame) -> Frame | None:
        return self.process_batch([frame])[0]

    def process_batch(self, frames: Sequence[Frame]) -> list[Frame | None]:
        import numpy as np
        import torch

        from stages.detection.nms import select_packed
        from stages.detection.preprocess import make_batch, unmap_packed

        p, model = self.params, self.model
        images = [self._image(f, model.device) for f in frames]
        x, places = make_batch(images, self.input_hw, self.resize, self.rgb, self.scale, p.pad_value, model.dtype)
        boxes, scores = self.head.decode(model(x), self.input_hw)
        b, s, c, img, counts = select_packed(boxes, scores, p.score_threshold, p.iou_threshold, self.keep,
                                             p.max_detections, p.max_candidates, p.class_agnostic)
        packed = torch.cat([unmap_packed(b, img, places), s[:, None], c[:, None].float()], 1).cpu().numpy()
        for frame, rows in zip(frames, np.split(packed, np.cumsum(counts)[:-1])):  # one copy to the host
            frame.detections = Detections(np.ascontiguousarray(rows[:, :4]), rows[:, 4].copy(),
                                          rows[:, 5].astype(np.int32), names=self.names)
        return list(frames)

    @staticmethod
    def _image(frame: Frame, device):
        """(3,H,W) uint8 on `device`: the frame's shared upload; on the CPU a view of the host image
        (a contiguous copy costs ~4 ms at 1080p, and the uint8 resize is fastest channels-last)."""
        if device.type == "cpu":
            import torch

            return torch.from_numpy(frame.image).permute(2, 0, 1)
        return frame.image_tensor(device)

    def summary(self) -> dict:
        out = dict(self.info)
        traced = self._traced
        if traced is not None:
            out["trace"] = f"off ({traced.fallback})" if traced.fallback else f"{traced.traces} traced"
        return out

    def close(self) -> None:
        self.model = None
