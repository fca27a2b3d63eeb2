"""Optical flow kernels: Horn-Schunck (the 1981 method and a coarse-to-fine variant with warping),
dense and sparse pyramidal Lucas-Kanade, pyramid/warp helpers, Middlebury .flo I/O, the Middlebury
colour code, a straightforward numpy reference of the same equations, and `vidpipe eval flow`.
Nothing here imports from `pipeline`; the stage wrapper is stages/flow.py.

Convention (all torch kernels): images (B,1,H,W) float32 grey levels (0..255 by default; any
scale works if alpha/thresholds follow it); flow (B,2,H,W) float32 pixels, channel 0 = dx
(x to the right), channel 1 = dy (y down); the flow maps frame t pixel p to p + flow(p) in t+1.
"""
