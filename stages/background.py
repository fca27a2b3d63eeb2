"""The `background` stage: a foreground mask per frame (Frame.mask, see stages.segmentation.masks
for the convention: (H,W) uint8 0/255, numpy on the CPU, a tensor on a GPU device).

Backends: `torch` (default; stages.segmentation.gaussian, runs on the pipeline's device), `mog2`
and `knn` (OpenCV, CPU). The model works at `scale` of the frame (at most `max_width` pixels wide)
and the mask is upsampled.

Which works where:
- static camera: any backend, `compensate: none`;
- moving camera over a (near-)planar scene, or a camera that only pans/tilts/zooms (a wall, a
  billboard, a far street): `backend: torch` with `compensate: homography` (the model is warped by
  the frame-to-frame homography from sparse features) or `compensate: plane` when the tracked
  surface fills most of the view and the stage runs after `planar_track` (Frame.plane);
- moving camera over a deep 3-D scene (a hand-held street): parallax breaks every warp; use
  `source: detections` (box masks from a detector/tracker before this stage), coarse but stable.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.frame import Frame
from pipeline.params import param
from pipeline.stage import Stage, StageContext


@dataclass
class BackgroundParams:
    backend: str = param("torch", choices=("torch", "mog2", "knn"),
                         doc="torch: running Gaussian on the pipeline device; mog2/knn: OpenCV (CPU)")
    source: str = param("model", choices=("model", "detections"),
                        doc="model: a background model; detections: the union of Frame.detections boxes")
    scale: float = param(0.5, gt=0, le=1, doc="processing resolution as a fraction of the frame (mask is upsampled)")
    max_width: int | None = param(None, ge=8, doc="cap on the processing width in pixels: a wider frame is processed "
                                  "at max_width / width instead of scale (a 1080p camera costs what a smaller one "
                                  "does); null: no cap")
    rate: float = param(0.01, gt=0, le=1, doc="learning rate per frame once settled (memory ~ 1/rate frames)")
    threshold: float = param(16.0, gt=0, doc="foreground when squared colour distance > threshold * variance "
                             "(MOG2 varThreshold; knn uses dist2Threshold = 25 * threshold)")
    foreground_factor: float = param(0.0, ge=0, le=1, doc="torch: foreground pixels learn this much slower (0 = not at all; "
                                     "what stays is absorbed through absorb_frames)")
    absorb_frames: int = param(150, ge=0, doc="torch: a foreground pixel whose colour holds still this many frames "
                               "becomes background (ghosts, parked objects); sooner for pixels watched < 2x as long; 0 = never")
    slack: bool = param(False, doc="torch: compare with the colour range halfway to each pixel's 3x3 neighbours "
                        "(tolerates ~0.5 px misregistration of a moving camera: fewer specks on sharp edges, "
                        "a few more missed pixels on busy texture)")
    shadows: bool = param(True, doc="detect shadows (a darker copy of the background) and keep them out of the mask")
    shadow_ratio: float = param(0.6, gt=0, lt=1, doc="darkest brightness ratio still called a shadow (MOG2 tau; "
                                "lower catches deeper shadows and more dark clothing)")
    min_std: float = param(4.0, gt=0, le=100, doc="torch: floor of the per-channel noise standard deviation, levels")
    open_size: int = param(3, ge=0, le=31, doc="opening element side in processing pixels, odd (0 = off): removes "
                           "specks; not scaled with the processing width (5/9 at a 1080p camera's 640 px halved its "
                           "MOTA on generated scenes: benchmarks/RESULTS.md)")
    close_size: int = param(5, ge=0, le=31, doc="closing element side in processing pixels, odd (0 = off): fills holes "
                            "(processing pixels too, see open_size)")
    compensate: str = param("none", choices=("none", "homography", "plane"),
                            doc="moving camera (torch only): warp the model by a sparse-feature homography or by Frame.plane")
    warmup: int = param(0, ge=0, doc="frames at the start that get an empty mask while the model learns")
    trace: bool = param(True, doc="torch, compensate none: classify, learn and clean each frame as one TorchScript "
                        "trace (one GIL release instead of ~200 small ops; checked against eager on its first frame)")
    classes: list[int] | None = param(None, doc="source detections: class ids to mask (null = every class)")
    min_score: float = param(0.0, ge=0, le=1, doc="source detections: lowest score that is masked")
    grow: float = param(2.0, ge=0, doc="source detections: pixels added around each box")

    def validate(self) -> list[str]:
        errors = []
        if self.compensate != "none" and self.backend != "torch":
            errors.append(f"compensate: {self.compensate!r} needs backend 'torch' (OpenCV models cannot be warped), "
                          f"got backend {self.backend!r}")
        for name in ("open_size", "close_size"):
            v = getattr(self, name)
            if v > 1 and v % 2 == 0:
                errors.append(f"{name}: expected 0, 1 or an odd size, got {v}")
        return errors


class BackgroundStage(Stage):
    type_name = "background"
    Params = BackgroundParams
    optional_reads = frozenset({"plane"})
    writes = frozenset({"mask"})
    input_views = True  # keeps no input array past process() (Stage.input_views)

    def __init__(self, params: BackgroundParams | None = None, name: str | None = None) -> None:
        super().__init__(params, name)
        if self.params.source == "detections":
            self.reads = frozenset({"detections"})
            self.optional_reads = frozenset()
        self.model = None
        self.canvas = None
        self.motion = None
        self._ignore = None
        self._prev_plane = None
        self._frames = 0
        self._fg_sum = 0.0
        self._motion_lost = 0
        self._traced = None

    def setup(self, context: StageContext) -> None:
        super().setup(context)
        p = self.params
        self.device = str(context.device)
        if p.source == "detections":
            return
        if p.backend == "torch":
            from stages.segmentation.gaussian import GaussianBackground

            var_min = p.min_std ** 2
            self.model = GaussianBackground(rate=p.rate, threshold=p.threshold, foreground_factor=p.foreground_factor,
                                            shadows=p.shadows, shadow_ratio=p.shadow_ratio,
                                            absorb_frames=p.absorb_frames, slack=p.slack,
                                            var_init=max(225.0, var_min),
                                            var_min=var_min, var_max=max(5625.0, var_min))
            if p.compensate == "none":
                from pipeline.traced import TracedCall

                self._traced = TracedCall(self._model_step, f"{self.name}: trace", mutates=True, enabled=p.trace,
                                          share=("background", repr(p), self.device))
                if p.trace:
                    from pipeline.priming import prime

                    prime(self, 3, self._forget_priming)   # the model starts on one frame, traces on the next
            if p.compensate != "none":
                from stages.segmentation.canvas import CanvasBackground

                self.canvas = CanvasBackground(self.model)
            if p.compensate == "homography":
                from stages.segmentation.motion import FrameMotion

                self.motion = FrameMotion()
        else:
            import cv2

            history = max(2, int(round(1.0 / p.rate)))
            if p.backend == "mog2":
                self.model = cv2.createBackgroundSubtractorMOG2(history, p.threshold, p.shadows)
                self.model.setShadowThreshold(p.shadow_ratio)
            else:
                self.model = cv2.createBackgroundSubtractorKNN(history, 25.0 * p.threshold, p.shadows)
                self.model.setShadowThreshold(p.shadow_ratio)

    def _forget_priming(self) -> None:
        self.model.reset()
        self._frames, self._fg_sum, self._ignore = 0, 0.0, None

    # ---- per frame ----
    def process(self, frame: Frame) -> Frame:
        p = self.params
        height, width = frame.shape
        if p.source == "detections":
            frame.mask = self._from_detections(frame, height, width)
        elif p.backend == "torch":
            frame.mask = self._torch_mask(frame, height, width)
        else:
            frame.mask = self._opencv_mask(frame, height, width)
        if self._frames < p.warmup:
            frame.mask = frame.mask * 0
        self._frames += 1
        return frame

    def _scale(self, width: int) -> float:
        """The processing scale for frames `width` pixels wide: scale, or less under max_width."""
        p = self.params
        return p.scale if p.max_width is None else min(p.scale, p.max_width / width)

    def _small_host(self, frame: Frame) -> np.ndarray:
        import cv2

        image = frame.image
        h, w = image.shape[:2]
        scale = self._scale(w)
        if scale == 1:
            return image
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA)

    def _torch_mask(self, frame: Frame, height: int, width: int):
        import torch

        from stages.segmentation.gaussian import downscale, to_batch
        from stages.segmentation.morphology import clean

        p = self.params
        small = None
        if self.device == "cpu" or self.motion is not None:
            small = self._small_host(frame)
        if self.device == "cpu":
            x = torch.from_numpy(small).permute(2, 0, 1)
        else:
            x = downscale(to_batch(frame.image_tensor(self.device)), self._scale(width))
        if self.canvas is not None:
            cur_from_prev = self._motion_step(frame, small)
            fg = clean(self.canvas.apply(small if self.device == "cpu" else to_batch(x), cur_from_prev),
                       p.open_size, p.close_size)
        else:
            fg = self._apply(x)
        if self.motion is not None:  # no keyframe corners on what moves (next keyframe)
            from stages.segmentation.morphology import dilate

            self._ignore = dilate(fg[0], 5).to("cpu").numpy()
        self._fg_sum += float(fg.float().mean()) if self._frames % 10 == 0 else 0.0
        return self._upsample(fg[0], height, width)

    def _model_step(self, state, x):
        """Classify, learn and clean one image against `state` (the model's tensor, updated in
        place). Convention: state (B,9,h,w) float32; x (3,h,w) or (B,3,h,w) -> (B,h,w) bool."""
        from stages.segmentation.morphology import clean

        self.model.state = state
        fg, _ = self.model.apply(x)
        return clean(fg, self.params.open_size, self.params.close_size)

    def _apply(self, x):
        from stages.segmentation.morphology import clean

        model, p = self.model, self.params
        state = model.state
        if not model.fits(x):
            fg, _ = model.apply(x)                         # a new model: the first image starts it
            return clean(fg, p.open_size, p.close_size)
        try:
            return self._traced(state, x)
        finally:
            model.state = state                            # the trace ran on it in place

    def _motion_step(self, frame: Frame, small) -> np.ndarray | None:
        """cur_from_prev at processing scale, or None: motion unknown, the model starts afresh."""
        from stages.segmentation.motion import rescale_homography

        p = self.params
        if p.compensate == "homography":
            import cv2

            cur_from_prev = self.motion.update(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), self._ignore)
            if cur_from_prev is None and self._frames > 0:
                self._motion_lost += 1
            return cur_from_prev
        plane = frame.plane
        usable = plane is not None and plane.valid and plane.frame_from_ref is not None
        prev, self._prev_plane = self._prev_plane, (plane.frame_from_ref if usable else None)
        if not (usable and prev is not None):
            if self._frames > 0:
                self._motion_lost += 1
            return None
        return rescale_homography(plane.frame_from_ref @ np.linalg.inv(prev), self._scale(frame.shape[1]))

    def _upsample(self, fg, height: int, width: int):
        import torch
        import torch.nn.functional as F

        if fg.device.type == "cpu":
            import cv2

            small = fg.numpy().view(np.uint8) * np.uint8(255)
            if small.shape != (height, width):   # bilinear, then > 127 (cv2.threshold: ~5x np.where at 1080p)
                small = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
                cv2.threshold(small, 127, 255, cv2.THRESH_BINARY, dst=small)
            return small
        m = fg.to(torch.float32)[None, None]
        if tuple(m.shape[-2:]) != (height, width):
            m = F.interpolate(m, size=(height, width), mode="bilinear", align_corners=False)
        return (m[0, 0] > 0.5).to(torch.uint8) * 255

    def _opencv_mask(self, frame: Frame, height: int, width: int) -> np.ndarray:
        import cv2

        p = self.params
        out = self.model.apply(self._small_host(frame), learningRate=-1)
        fg = cv2.compare(out, 255, cv2.CMP_EQ)           # 255 where foreground, shadows (127) out
        if p.open_size > 1:
            fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, np.ones((p.open_size, p.open_size), np.uint8))
        if p.close_size > 1:
            fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, np.ones((p.close_size, p.close_size), np.uint8))
        if fg.shape != (height, width):
            fg = cv2.resize(fg, (width, height), interpolation=cv2.INTER_LINEAR)
            cv2.threshold(fg, 127, 255, cv2.THRESH_BINARY, dst=fg)
        if self._frames % 10 == 0:
            self._fg_sum += float((fg > 0).mean())
        return fg

    def _from_detections(self, frame: Frame, height: int, width: int) -> np.ndarray:
        from stages.segmentation.masks import boxes_mask

        p = self.params
        det = frame.detections
        if det is None or len(det) == 0:
            return np.zeros((height, width), np.uint8)
        keep = det.score >= p.min_score
        if p.classes is not None:
            keep &= np.isin(det.class_id, np.asarray(p.classes, np.int32))
        return boxes_mask(det.xyxy[keep], height, width, p.grow)

    def summary(self) -> dict:
        sampled = max(1, (self._frames + 9) // 10)
        out = {"backend": self.params.backend if self.params.source == "model" else "detections",
               "mean_foreground": round(self._fg_sum / sampled, 4)}
        if self._traced is not None and self._traced.enabled:
            out["trace"] = f"off ({self._traced.fallback})" if self._traced.fallback else f"{self._traced.traces} traced"
        if self.params.compensate != "none":
            out["motion_lost"] = self._motion_lost
            out["rebases"] = self.canvas.rebases if self.canvas is not None else 0
        return out
