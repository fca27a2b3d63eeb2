"""Compositing kernels for virtual product placement (numpy/OpenCV and torch; nothing here imports
`pipeline`):

- `ad`: loading an ad (PNG with alpha) and the generated example ad (configs/assets/ad.png);
- `geometry`: where the ad goes on the surface (ref_from_ad), projections, regions of interest;
- `color`: Lab conversions (torch, matching OpenCV) and the mean/std colour transfer;
- `blur`: blur kernels (Gaussian, motion along a displacement) and the fit of the surface's blur;
- `composite`: warp + blur + occlusion + blend, an OpenCV and a torch implementation;
- `evaluate`: the visible-ad region against ground truth (IoU), reusable on any clip.
"""
