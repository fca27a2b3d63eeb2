"""Object detection kernels (pure torch / numpy; nothing from `pipeline`).

- `heads`: output decoders (YOLOX, FastestDet, YOLOv8/YOLO11, YOLOv5), their pre-processing
  recipes and head detection from the output shape;
- `preprocess`: letterbox / plain resize of device images into a network batch, and the mapping back;
- `nms`: batched class-aware non-maximum suppression and the score/class selection before it;
- `backends`: model loaders and runners (torch via onnx2torch, onnxruntime, TorchScript, torch.export);
- `weights`: model-file checks, the table of known downloads, the sha256-checked fetch;
- `blobs`: boxes from a foreground mask (the weight-free `motion` detector).
"""
