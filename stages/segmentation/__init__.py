"""Background-foreground segmentation kernels (torch, GPU-capable; OpenCV for sparse motion).

- `gaussian.GaussianBackground`: per-pixel running Gaussian with an adaptive learning rate and a
  MOG2-style shadow test, batched over (B,3,H,W);
- `morphology`: erosion, dilation, opening and closing through max-pooling;
- `canvas`: the moving-camera model, kept on a canvas each frame is registered to (resampled once);
- `motion`: camera motion between frames from sparse features against a keyframe (no drift
  between keyframes), sampling grids;
- `masks`: the Frame.mask convention, host/device conversions, box masks from detections;
- `draw`: the annotate layer `mask` (foreground tint and outline).

Nothing here imports `pipeline`.
"""
