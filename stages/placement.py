"""The `placement` stage: virtual product placement. The ad (a PNG with alpha) is warped onto the
tracked surface (Frame.plane), its colour and brightness matched to the surface, blurred as much as
the surface is (focus and motion blur), hidden behind whatever Frame.mask says is in front, and
blended in; nothing is drawn while the plane is invalid. Where an occluder meets the ad, the mask's
edge is refined with the frame as the guide (`matte: guided`).

Where the ad goes: the surface's corners in the reference frame (Frame.plane.corners mapped back by
frame_from_ref on the first valid frame) define ref_from_ad (`fit`, `inset`); with a `fill` the ad
is first put on a backdrop panel that covers the whole surface (its transparent corners and the
margins filled) and the panel is what is drawn; every frame then uses
frame_from_ad = plane.frame_from_ref @ ref_from_ad, so the ad inherits the tracker's accuracy and
does not drift. Backend `auto` composites with torch (grid_sample) where the pipeline runs on a
GPU, with OpenCV on the CPU.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from pipeline.frame import Frame
from pipeline.params import param
from pipeline.stage import Stage, StageContext


@dataclass
class PlacementParams:
    image: str = param("configs/assets/ad.png", path="file",
                       doc="the ad: PNG with alpha (an image without alpha is opaque)")
    backend: str = param("auto", choices=("auto", "torch", "opencv"),
                         doc="auto: torch (grid_sample) on a GPU device, OpenCV on the CPU")
    fit: str = param("stretch", choices=("stretch", "contain"),
                     doc="stretch: ad corners on the surface corners; contain: keep the ad's aspect ratio, centred")
    inset: float = param(0.0, ge=0, le=0.45, doc="fraction of the surface left free on every side")
    opacity: float = param(1.0, ge=0, le=1, doc="overall opacity of the ad")
    color_strength: float = param(0.25, ge=0, le=1, doc="how far the ad's Lab mean/std move to the surface's (0 = as designed)")
    follow_lighting: bool = param(True, doc="follow later changes of the surface's colour and brightness in full")
    color_smoothing: float = param(0.8, ge=0, lt=1, doc="weight of the past in the surface statistics (against flicker)")
    match_sharpness: bool = param(True, doc="blur the ad as much as the surface is blurred relative to the first frame")
    motion_blur: bool = param(True, doc="let the sharpness fit use motion blur along the surface's image motion")
    base_blur: float = param(0.0, ge=0, le=10, doc="Gaussian sigma in px always applied (the camera's own softness)")
    max_blur: float = param(3.5, ge=0, le=10, doc="largest sigma in px the sharpness fit may choose")
    blur_every: int = param(2, ge=1, le=100, doc="refit the blur every N frames (about 1 ms per fit)")
    fill: str = param("edge", choices=("none", "color", "edge", "blur"),
                      doc="backdrop over the whole surface behind the ad, so that none of the old surface shows at the "
                          "ad's transparent parts or in the contain/inset margins: edge (the ad's edge colours carried "
                          "outwards), color (fill_color), blur (the ad stretched and blurred); none: the old surface shows")
    fill_color: list[int] | None = param(None, doc="fill color: the backdrop's colour [B, G, R] 0-255 (null = the ad's mean colour)")
    occlusion: bool = param(True, doc="hide the ad where Frame.mask is foreground")
    matte: str = param("guided", choices=("guided", "feather"),
                       doc="occlusion edge: guided (the mask refined with a guided filter on the frame so that it follows the "
                           "occluder's outline: a mask a pixel or two off leaves no rim of old surface or of ad around people); "
                           "feather (the mask blurred by `feather`)")
    matte_radius: int = param(4, ge=1, le=32, doc="matte guided: window radius in px (corrects mask errors up to about half of it)")
    matte_eps: float = param(1e-3, gt=0, le=1, doc="matte guided: regularisation in (grey/255)^2 (edges weaker than ~sqrt(eps)*255 "
                             "grey levels are not followed)")
    matte_contrast: float = param(4.0, ge=1, le=100, doc="matte guided: steepness of the refined edge (1 = the filter's own ramp)")
    feather: float = param(1.5, ge=0, le=20, doc="matte feather: sigma in px of the soft edge where the ad meets an occluder")

    def validate(self) -> list[str]:
        errors = []
        if not os.path.isfile(self.image):
            errors.append(f"image: file not found: {self.image} (paths are relative to the working directory)")
        if self.fill_color is not None and (len(self.fill_color) != 3 or not all(0 <= v <= 255 for v in self.fill_color)):
            errors.append(f"fill_color: expected [B, G, R] with 0 <= each <= 255, got {self.fill_color}")
        return errors


class PlacementStage(Stage):
    type_name = "placement"
    Params = PlacementParams
    reads = frozenset({"plane"})
    optional_reads = frozenset({"mask", "flow"})
    writes = frozenset({"image"})
    input_views = True  # keeps no input array past process() (Stage.input_views)

    def __init__(self, params: PlacementParams | None = None, name: str | None = None) -> None:
        super().__init__(params, name)
        self.pyramid = None
        self.ref_quad = self.ref_from_ad = None
        self.last_coverage = None   # (roi, coverage) of the last frame drawn, for evaluations
        self._start = None          # (grey, frame_from_ref, fg mask) of the first valid frame
        self._prev = None           # (frame index, frame_from_ref) of the previous valid frame
        self._stats = self._start_stats = None
        self._blur = (0.0, 0.0)     # fitted (sigma, exposure), smoothed
        self._blur_grid = None      # the last fit's grid point
        self._cache: dict = {}
        self._ad_key = self._ad_cached = None
        self._counts = {"drawn": 0, "skipped": 0}

    def setup(self, context: StageContext) -> None:
        super().setup(context)
        from stages.compositing.ad import load_ad
        from stages.compositing.composite import AdPyramid

        from stages.compositing.matte import GuidedMatte

        self._ad = load_ad(self.params.image)
        self.pyramid = AdPyramid(self._ad)
        self.device = str(context.device)
        backend = self.params.backend
        self.use_torch = backend == "torch" or (backend == "auto" and not self.device.startswith("cpu"))
        p = self.params
        self.matte = GuidedMatte(p.matte_radius, p.matte_eps, p.matte_contrast) if p.matte == "guided" else None

    def process(self, frame: Frame) -> Frame:
        from stages.compositing.ad import ad_corners
        from stages.compositing.geometry import is_convex_quad, on_screen_scale, project, roi_of, scale_homography

        plane = frame.plane
        self.last_coverage = None
        if plane is None or not plane.valid or plane.frame_from_ref is None:
            self._prev = None
            return self._skip(frame)
        h_ref = np.asarray(plane.frame_from_ref, np.float64)
        if self.ref_from_ad is None and not self._init_placement(plane, h_ref):
            return self._skip(frame)
        pyr = self.pyramid
        frame_from_ad = h_ref @ self.ref_from_ad
        quad = project(frame_from_ad, ad_corners(pyr.width, pyr.height))
        surface = project(h_ref, self.ref_quad)
        if not is_convex_quad(quad):
            return self._skip(frame)
        height, width = frame.shape
        mask = frame.mask if self.params.occlusion else None
        motion = self._motion(frame, h_ref)
        blur = self._blur_for(frame, h_ref, surface, mask, motion)
        roi = roi_of(quad, height, width, pad=blur.radius + 1)
        if roi is None:
            return self._skip(frame)
        gain, offset = self._color(frame, surface, roi, mask)
        level = pyr.level_for(on_screen_scale(frame_from_ad, pyr.width, pyr.height))
        frame_from_level = frame_from_ad @ np.linalg.inv(scale_homography(level))
        p = self.params
        ad = self._ad_image(level, gain, offset)
        if self.use_torch:
            from stages.compositing.composite import composite_torch
            from stages.segmentation.masks import device_mask

            image = frame.image_tensor(self.device)
            occ = device_mask(mask, image.device) if mask is not None else None
            out, cov = composite_torch(image, ad, frame_from_level, roi, blur, occ, p.feather, p.opacity,
                                       self.matte)
        else:
            from stages.compositing.composite import composite_cv2
            from stages.segmentation.masks import host_mask

            out, cov = composite_cv2(frame.image, ad, frame_from_level, roi, blur, host_mask(mask), p.feather, p.opacity,
                                     self.matte)
        frame.set_image(out)
        self.last_coverage = (roi, cov)
        self._counts["drawn"] += 1
        frame.meta["placement"] = {"drawn": True, "level": level, "blur_sigma": round(self._blur[0], 2),
                                   "exposure": round(self._blur[1], 2), "motion_px": [round(float(v), 2) for v in motion]}
        return frame

    def _ad_image(self, level: int, gain, offset):
        """The colour-matched ad level, recomputed only when the transfer moved noticeably
        (0.5 Lab units of offset, 1% of gain): the statistics drift slowly and the conversion
        of a whole level is the costliest step of a frame."""
        key = self._ad_key
        if key is not None and key[0] == level and (gain is None) == (key[1] is None) and (
                gain is None or (np.abs(gain - key[1]).max() < 0.01 and np.abs(offset - key[2]).max() < 0.5)):
            return self._ad_cached
        if self.use_torch:
            ad = self.pyramid.colored_torch(level, self.device, gain, offset, self._cache)
        else:
            ad = self.pyramid.colored(level, gain, offset)
        self._ad_key, self._ad_cached = (level, gain, offset), ad
        return ad

    def _skip(self, frame: Frame) -> Frame:
        self._counts["skipped"] += 1
        frame.meta["placement"] = {"drawn": False}
        return frame

    def _init_placement(self, plane, h_ref: np.ndarray) -> bool:
        """On the first valid plane: the surface in the reference frame, where the ad goes on it and,
        with a fill, the panel (ad over backdrop, covering the whole surface) that is drawn instead."""
        from stages.compositing.ad import ad_corners
        from stages.compositing.backdrop import make_panel, panel_layout
        from stages.compositing.composite import AdPyramid
        from stages.compositing.geometry import ad_box, project, quad_homography, ref_from_ad

        if plane.corners is None:
            return False
        p = self.params
        self.ref_quad = project(np.linalg.inv(h_ref), np.asarray(plane.corners, np.float64).reshape(4, 2))
        width, height = self.pyramid.width, self.pyramid.height
        layout = panel_layout(width, height, *ad_box(width, height, self.ref_quad, p.fit, p.inset))
        if p.fill == "none" or (layout.is_ad_alone(width, height) and self._ad[..., 3].min() == 255):
            self.ref_from_ad = ref_from_ad(width, height, self.ref_quad, p.fit, p.inset)
            return True
        panel = make_panel(self._ad, layout, p.fill, p.fill_color)
        self.pyramid = AdPyramid(panel, stats=self.pyramid.stats)  # the ad's colour statistics
        self.ref_from_ad = quad_homography(ad_corners(layout.panel_w, layout.panel_h), self.ref_quad)
        return True

    # ---- motion, blur, colour ----
    def _motion(self, frame: Frame, h_ref: np.ndarray) -> np.ndarray:
        """Image displacement of the surface's centre per frame interval (plane, else mean flow)."""
        from stages.compositing.geometry import project

        prev, self._prev = self._prev, (frame.index, h_ref)
        centre = self.ref_quad.mean(0, keepdims=True)
        if prev is not None and frame.index > prev[0]:
            return (project(h_ref, centre) - project(prev[1], centre))[0] / (frame.index - prev[0])
        if frame.flow is not None:
            x, y = (int(v) for v in np.clip(project(h_ref, centre)[0], 0, np.array(frame.shape[::-1]) - 1))
            return np.array([float(frame.flow[0, y, x]), float(frame.flow[1, y, x])])
        return np.zeros(2)

    def _grey_window(self, frame: Frame, box) -> np.ndarray:
        import cv2

        x0, y0, x1, y1 = box
        if self.use_torch:
            crop = frame.image_tensor(self.device)[:, y0:y1, x0:x1].permute(1, 2, 0).cpu().numpy()
        else:
            crop = frame.image[y0:y1, x0:x1]
        return cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_BGR2GRAY).astype(np.float32)

    def _blur_for(self, frame: Frame, h_ref, surface, mask, motion):
        from stages.compositing.blur import Blur

        p = self.params
        if p.match_sharpness and self._counts["drawn"] % p.blur_every == 0:
            self._fit_blur(frame, h_ref, surface, mask, motion)
        return Blur(float(np.hypot(p.base_blur, self._blur[0])), (float(motion[0]), float(motion[1])), self._blur[1])

    def _fit_blur(self, frame, h_ref, surface, mask, motion) -> None:
        import cv2

        from stages.compositing.blur import fit_blur
        from stages.compositing.geometry import inside_quad, roi_of
        from stages.segmentation.masks import host_mask

        height, width = frame.shape
        cx, cy = surface.mean(0)
        box = roi_of(np.array([[cx - 48, cy - 48], [cx + 47, cy + 47]]), height, width)
        if box is None:
            return
        x0, y0, x1, y1 = box
        grey = self._grey_window(frame, box)
        fg = host_mask(mask)
        if self._start is None:
            full = self._grey_window(frame, (0, 0, width, height))
            self._start = (full, h_ref, fg)
            return
        ref_grey, h0, fg0 = self._start
        warp = np.array([[1.0, 0, -x0], [0, 1.0, -y0], [0, 0, 1]]) @ h_ref @ np.linalg.inv(h0)
        ref = cv2.warpPerspective(ref_grey, warp, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=-1.0)
        ys, xs = np.mgrid[y0:y1, x0:x1]
        weights = inside_quad(surface, xs.astype(np.float64), ys.astype(np.float64)) & (ref >= 0)
        if fg is not None:
            weights &= fg[y0:y1, x0:x1] == 0
        if fg0 is not None:
            weights &= cv2.warpPerspective(fg0, warp, (x1 - x0, y1 - y0), flags=cv2.INTER_NEAREST) == 0
        sigmas = tuple(s for s in (0.0, 0.7, 1.2, 1.8, 2.5, 3.5, 5.0) if s <= self.params.max_blur)
        exposures = (0.0, 0.5, 1.0) if self.params.motion_blur else (0.0,)
        if weights.sum() < 64 or float(ref[weights].std()) < 3.0:  # too little texture to judge
            return
        best = fit_blur(grey, ref, weights.astype(np.float32), sigmas, motion, exposures, near=self._blur_grid)
        if best is not None:
            self._blur_grid = best[:2]  # next fit searches around it
            self._blur = (0.5 * self._blur[0] + 0.5 * best[0], 0.5 * self._blur[1] + 0.5 * best[1])

    def _color(self, frame: Frame, surface, roi, mask):
        import cv2

        from stages.compositing.color import transfer, weighted_stats
        from stages.compositing.geometry import inside_quad

        p = self.params
        if p.color_strength == 0 and not p.follow_lighting:
            return None, None
        x0, y0, x1, y1 = roi
        xs = np.linspace(x0, x1 - 1, min(32, x1 - x0)).round().astype(np.int64)
        ys = np.linspace(y0, y1 - 1, min(32, y1 - y0)).round().astype(np.int64)
        gx, gy = np.meshgrid(xs, ys)
        keep = inside_quad(surface, gx.astype(np.float64), gy.astype(np.float64))
        if mask is not None:
            keep &= _sample(mask, gy, gx) == 0
        if keep.sum() >= 16:
            colours = _sample_image(frame, gy[keep], gx[keep], self.use_torch, self.device)
            lab = cv2.cvtColor(colours.reshape(1, -1, 3).astype(np.float32) / 255.0, cv2.COLOR_BGR2Lab)
            stats = weighted_stats(lab.reshape(-1, 3))
            if self._stats is None:
                self._stats = stats
            else:
                a = p.color_smoothing
                self._stats = (a * self._stats[0] + (1 - a) * stats[0], a * self._stats[1] + (1 - a) * stats[1])
            if self._start_stats is None:
                self._start_stats = self._stats
        if self._stats is None:
            return None, None
        start = self._start_stats if p.follow_lighting else None
        return transfer(self.pyramid.stats, self._stats, start, p.color_strength)

    def summary(self) -> dict:
        return dict(self._counts)


def _sample(mask, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Mask values at integer points, numpy or torch mask -> numpy."""
    if isinstance(mask, np.ndarray):
        return mask[ys, xs]
    import torch

    idx = torch.as_tensor(ys * mask.shape[-1] + xs, device=mask.device)
    return mask.reshape(-1)[idx.reshape(-1)].cpu().numpy().reshape(ys.shape)


def _sample_image(frame: Frame, ys: np.ndarray, xs: np.ndarray, use_torch: bool, device: str) -> np.ndarray:
    """(N,3) uint8 BGR colours at integer points, gathered on the device when the image is there."""
    if not use_torch:
        return frame.image[ys, xs]
    import torch

    t = frame.image_tensor(device)
    idx = torch.as_tensor(ys * t.shape[-1] + xs, device=t.device)
    return t.reshape(3, -1)[:, idx].T.cpu().numpy()
