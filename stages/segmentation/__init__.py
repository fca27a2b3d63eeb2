"""Background-foreground segmentation kernels (torch, GPU-capable; OpenCV for sparse motion).

- `gaussian.GaussianBackground`: per-pixel running Gaussian with an adaptive learning rate and a
  MOG2-style shadow test, batched over (B,3,H,W);
- `morphology`: erosion, dilation, opening and closing through max-pooling;
- `motion`: frame-to-frame homography from sparse features and warping of the model's state, for
  a moving camera;
- `masks`: box masks from detections and the host/device mask conversions.

Nothing here imports `pipeline`.
"""
