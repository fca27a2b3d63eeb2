"""Planar tracking kernels: feature detectors and matchers, robust homographies, the drift-free
planar tracker, corner smoothing, drawing and the `vidpipe eval planar` command. Nothing here
imports from `pipeline`; the stage wrapper is stages/planar_track.py."""
