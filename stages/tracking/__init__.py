"""Multi-object tracking kernels (numpy, no `pipeline` imports): a constant-velocity Kalman filter
vectorized over tracks (kalman), IoU + Hungarian assignment (assignment), SORT (sort) and
ByteTrack-style two-round association (bytetrack); `evaluate` scores them on MOT15-layout folders."""
