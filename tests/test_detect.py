"""The detect stage on real models (YOLOX-Nano, FastestDet) against onnxruntime and the models'
documented reference output, on models made here (TorchScript, torch.export) against a numpy
decoding of their raw output, and its one-line errors for bad model files."""
from __future__ import annotations

import logging
import threading

import numpy as np
import pytest
import torch

from conftest import shared_path
from pipeline.frame import Frame
from pipeline.params import ConfigError, build_or_raise
from pipeline.stage import SourceInfo, StageContext
from stages.detect import DetectParams, DetectStage

YOLOX = ("models", "yolox_nano", "yolox_nano.onnx")
FASTESTDET = ("models", "fastestdet", "FastestDet.onnx")


def context(device="cpu") -> StageContext:
    return StageContext(device, SourceInfo("test", 1920, 1080, 25.0, False), threading.Event(),
                        logging.getLogger("test.detect"))


def make_stage(device="cpu", **params) -> DetectStage:
    stage = DetectStage(build_or_raise(DetectParams, params, "detect"))
    stage.setup(context(device))
    return stage


def run(stage, images):
    frames = [Frame(i, i / 25, img) for i, img in enumerate(images)]
    stage.process_batch(frames) if len(frames) > 1 else stage.process(frames[0])
    return [f.detections for f in frames]


@pytest.fixture(scope="module")
def first_frame() -> np.ndarray:
    import av

    with av.open(str(shared_path("data", "videos", "pedestrians_towncentre_1080p.mp4"))) as container:
        return next(container.decode(video=0)).to_ndarray(format="bgr24")


def assert_same(a, b, px=1.0, score=0.01):
    assert len(a) == len(b), (len(a), len(b))
    np.testing.assert_array_equal(a.class_id, b.class_id)
    assert np.abs(a.xyxy - b.xyxy).max(initial=0) <= px
    assert np.abs(a.score - b.score).max(initial=0) <= score


@pytest.mark.parametrize("parts, persons", [(YOLOX, 19), (FASTESTDET, 19)])
def test_torch_backend_equals_onnxruntime(first_frame, parts, persons):
    model = str(shared_path(*parts))
    dets = {b: run(make_stage(model=model, backend=b), [first_frame])[0] for b in ("torch", "onnxruntime")}
    assert_same(dets["torch"], dets["onnxruntime"])
    n = int(((dets["torch"].class_id == 0) & (dets["torch"].score >= 0.3)).sum())
    assert n >= persons
    assert dets["torch"].names[0] == "person" and len(dets["torch"].names) == 80


def test_yolox_matches_documented_reference(first_frame):
    """../shared/models/SOURCES.md: person 0.84 at x,y,w,h = 240,463,113,225 on this frame."""
    det = run(make_stage(model=str(shared_path(*YOLOX)), keep_classes=["person"]), [first_frame])[0]
    i = int(np.argmax(det.score))
    assert det.class_name(i) == "person" and abs(det.score[i] - 0.84) < 0.01
    np.testing.assert_allclose(det.xywh[i], [240, 463, 113, 225], atol=1.5)
    assert set(det.class_id.tolist()) == {0}


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_batches_equal_single_frames(first_frame, backend):
    """batch: 3 (a graph that takes any batch) and FastestDet (fixed batch 1: run one by one)."""
    flipped = np.ascontiguousarray(first_frame[:, ::-1])
    for parts in (YOLOX, FASTESTDET):
        model = str(shared_path(*parts))
        single = make_stage(model=model, backend=backend)
        batched = make_stage(model=model, backend=backend, batch=3)
        assert batched.batch_size == 3 and batched.info["one_by_one"] == (parts == FASTESTDET)
        got = run(batched, [first_frame, flipped, first_frame])
        assert_same(got[0], run(single, [first_frame])[0], px=0.01, score=1e-4)
        assert_same(got[1], run(single, [flipped])[0], px=0.01, score=1e-4)


def matched(a, b, min_score=0.5) -> tuple[float, float]:
    """For b's boxes scoring >= min_score: the worst best-IoU with a's boxes of the same class, and
    the largest score difference to that box (NMS near its threshold may keep different neighbours
    of a crowd, so low-score boxes are not paired)."""
    from stages.detection.nms import box_iou

    worst_iou, worst_score = 1.0, 0.0
    iou = box_iou(torch.from_numpy(b.xyxy), torch.from_numpy(a.xyxy)).numpy()
    iou[b.class_id[:, None] != a.class_id[None, :]] = 0
    for i in np.flatnonzero(b.score >= min_score):
        j = int(np.argmax(iou[i]))
        worst_iou, worst_score = min(worst_iou, float(iou[i, j])), max(worst_score, abs(float(a.score[j] - b.score[i])))
    return worst_iou, worst_score


def test_device_forward_matches_cpu(device):
    """The converted graph on the GPU (fp32, TF32 off) gives the CPU's raw output on one input;
    pre-processing on the GPU gives the CPU's network input."""
    if not device.startswith("cuda"):
        pytest.skip("needs --device cuda")
    from stages.detection.backends import load
    from stages.detection.preprocess import make_batch

    path = shared_path(*YOLOX)
    x = torch.rand(2, 3, 416, 416, generator=torch.Generator().manual_seed(0)) * 255
    cpu = load(path, "torch", "cpu")(x)
    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        gpu = load(path, "torch", device)(x.to(device)).cpu()
    finally:
        torch.backends.cudnn.allow_tf32 = tf32
    assert (gpu - cpu).abs().max() < 1e-3
    img = torch.randint(0, 256, (3, 1080, 1920), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    for dtype, tol in ((torch.float32, 1.01), (torch.float16, 1.15)):  # the CPU path resizes in uint8 (+-1)
        on_cpu = make_batch([img], (416, 416), "letterbox")[0]
        on_gpu = make_batch([img.to(device)], (416, 416), "letterbox", dtype=dtype)[0].float().cpu()
        assert (on_cpu - on_gpu).abs().max() <= tol


def test_device_matches_cpu(first_frame, device):
    """On a GPU (--device cuda): frames uploaded once; fp32 and fp16 (the default there) find the
    CPU's confident boxes."""
    if not device.startswith("cuda"):
        pytest.skip("needs --device cuda")
    model = str(shared_path(*YOLOX))
    cpu = run(make_stage(model=model), [first_frame])[0]
    fp32 = run(make_stage(device=device, model=model, half=False), [first_frame])[0]
    stage = make_stage(device=device, model=model, batch=4)
    assert stage.info["dtype"] == "float16" and stage.info["device"].startswith("cuda")
    frames = [Frame(i, 0.0, first_frame) for i in range(4)]
    stage.process_batch(frames)
    assert list(frames[0]._tensors) == [stage.info["device"]]  # one upload, shared under one key
    fp16 = frames[3].detections
    assert ((fp16.class_id == 0) & (fp16.score >= 0.3)).sum() >= 19
    iou32, sc32 = matched(cpu, fp32)
    iou16, sc16 = matched(cpu, fp16)
    print(f"cpu {len(cpu)}, cuda fp32 {len(fp32)} (IoU >= {iou32:.3f}, score {sc32:.4f}), "
          f"fp16 {len(fp16)} (IoU >= {iou16:.3f}, score {sc16:.4f})")
    assert abs(len(fp32) - len(cpu)) <= 2 and iou32 >= 0.95 and sc32 <= 0.01
    assert abs(len(fp16) - len(cpu)) <= 3 and iou16 >= 0.9 and sc16 <= 0.03


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_cuda_graphs_equal_eager(tmp_path, device):
    """A TorchScript model replayed as CUDA graphs gives the eager detections, for the full and a
    partial batch; a graph that cannot be captured (onnx2torch's shape ops copy from the host)
    falls back to eager and says so."""
    if not device.startswith("cuda"):
        pytest.skip("needs --device cuda")
    torch.manual_seed(0)
    path = tmp_path / "tiny.torchscript"
    torch.jit.save(torch.jit.trace(TinyV8().eval(), torch.zeros(1, 3, 64, 64)), str(path))
    common = dict(device=device, model=str(path), input_size=64, score_threshold=0.5, batch=3, classes=["a", "b", "c"])
    eager = make_stage(cuda_graphs=False, **common)
    graphed = make_stage(cuda_graphs=True, **common)
    assert graphed.info["cuda_graphs"] is True and eager.info["cuda_graphs"] is False
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 256, (90, 160, 3), dtype=np.uint8) for _ in range(3)]
    for images in (imgs, imgs[:2]):
        for a, b in zip(run(eager, images), run(graphed, images)):
            assert len(a) > 0
            assert_same(a, b, px=0.1, score=1e-3)  # TF32 convolutions may pick other algorithms
    assert len(graphed.model.graphed.graphs) == 2
    yolox = make_stage(device=device, model=str(shared_path(*YOLOX)), cuda_graphs=True)
    assert yolox.info["cuda_graphs"] is False and yolox.model.graphed.failure


def test_device_onnxruntime_cuda(first_frame, device):
    """onnxruntime's CUDA execution provider, where this onnxruntime has it."""
    import onnxruntime

    if not device.startswith("cuda") or "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        pytest.skip("needs --device cuda and onnxruntime-gpu")
    model = str(shared_path(*YOLOX))
    assert_same(run(make_stage(device=device, model=model, backend="onnxruntime"), [first_frame])[0],
                run(make_stage(model=model, backend="onnxruntime"), [first_frame])[0], px=1.0, score=0.01)


class TinyV8(torch.nn.Module):
    """A random conv net at input 64x64 with an Ultralytics-style output (B, 4+nc, N), N = 84 (or the
    YOLOv5 style (B, 3N, 5+nc)): cx,cy,w,h in input pixels, sigmoid scores."""

    def __init__(self, nc=3, yolov5=False):
        super().__init__()
        self.nc, self.v5 = nc, yolov5
        self.stem = torch.nn.Conv2d(3, 8, 3, stride=8, padding=1)
        self.head = torch.nn.Conv2d(8, (3 * (5 + nc)) if yolov5 else 4 + nc, 1)
        n = 84 * (3 if yolov5 else 1)
        self.register_buffer("centres", torch.rand(n, 2, generator=torch.Generator().manual_seed(1)) * 64)

    def forward(self, x):
        f8 = torch.relu(self.stem(x))
        o = torch.cat([self.head(torch.nn.functional.avg_pool2d(f8, k) if k > 1 else f8).flatten(2)
                       for k in (1, 2, 4)], 2)
        if self.v5:  # (B, 3*(5+nc), N) -> (B, 3N, 5+nc)
            b, _, n = o.shape
            o = o.reshape(b, 3, 5 + self.nc, n).permute(0, 1, 3, 2).reshape(b, 3 * n, 5 + self.nc)
        else:
            o = o.transpose(1, 2)
        xy = self.centres + 8 * torch.tanh(o[..., :2])
        rows = torch.cat([xy, 4 + 12 * torch.sigmoid(o[..., 2:4]), torch.sigmoid(4 * o[..., 4:])], -1)
        return rows if self.v5 else rows.transpose(1, 2)


def numpy_reference(raw, v5, thr, iou, r, pad, size_hw):
    from test_detection_nms import reference_nms

    rows = raw[0] if v5 else raw[0].T  # (N, 5+nc) or (N, 4+nc)
    cx, cy, w, h = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
    scores = rows[:, 5:] * rows[:, 4:5] if v5 else rows[:, 4:]
    conf, cls = scores.max(1), scores.argmax(1)
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)
    cand = np.flatnonzero(conf >= thr)
    kept = cand[reference_nms(boxes[cand].tolist(), conf[cand].tolist(), cls[cand].tolist(), iou)]
    out = (boxes[kept] - [pad[0], pad[1], pad[0], pad[1]]) / r
    out = np.clip(out, 0, [size_hw[1], size_hw[0], size_hw[1], size_hw[0]])
    return out, conf[kept], cls[kept]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit, deprecated in torch 2.10+, still loads
@pytest.mark.parametrize("kind", ["torchscript", "export"])
def test_made_model_equals_numpy_decoding(tmp_path, kind):
    """TorchScript (yolov8 layout) and torch.export (yolov5 layout) files made here, through the
    stage, equal a numpy decode + brute-force NMS of the module's raw output on the same input."""
    from stages.detection.preprocess import make_batch

    torch.manual_seed(0)
    v5 = kind == "export"
    net = TinyV8(nc=3, yolov5=v5).eval()
    example = torch.zeros(1, 3, 64, 64)
    if kind == "torchscript":
        path = tmp_path / "tiny.torchscript"
        torch.jit.save(torch.jit.trace(net, example), str(path))
        params = {"input_size": 64}
    else:
        path = tmp_path / "tiny.pt2"
        batch = torch.export.Dim("batch", min=1, max=16)
        program = torch.export.export(net, (example.repeat(2, 1, 1, 1),), dynamic_shapes=({0: batch},))
        torch.export.save(program, str(path))
        params = {"batch": 2}
    thr = 0.25 if v5 else 0.5  # obj * cls is smaller
    stage = make_stage(model=str(path), classes=["a", "b", "c"], score_threshold=thr, iou_threshold=0.5, **params)
    assert stage.info["head"] == ("yolov5" if v5 else "yolov8") and stage.info["backend"] == kind
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (90, 160, 3), dtype=np.uint8)
    got = run(stage, [img, img])[0] if v5 else run(stage, [img])[0]
    x, (place,) = make_batch([torch.from_numpy(img).permute(2, 0, 1)], (64, 64), "letterbox_center", True, 1 / 255)
    assert place.ratio == (0.4, 0.4) and place.pad == (0.0, 14.0)
    with torch.no_grad():
        raw = net(x).numpy()
    boxes, conf, cls = numpy_reference(raw, v5, thr, 0.5, 0.4, (0.0, 14.0), (90, 160))
    assert len(got) > 3 and got.names == ("a", "b", "c")
    np.testing.assert_allclose(got.xyxy, boxes, atol=1e-3)
    np.testing.assert_allclose(got.score, conf, atol=1e-5)
    np.testing.assert_array_equal(got.class_id, cls)


def _bad_files(tmp_path):
    yolox = shared_path(*YOLOX)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    text = tmp_path / "notes.onnx"
    text.write_text("this is not a model\n")
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(yolox.read_bytes()[:50_000])
    ts = tmp_path / "bad.torchscript"
    ts.write_text("nope")
    pt2 = tmp_path / "bad.pt2"
    pt2.write_text("nope")
    odd = tmp_path / "model.bin"
    odd.write_bytes(b"\0" * 8)
    return {"yolox": str(yolox), "fastestdet": str(shared_path(*FASTESTDET)), "empty": str(empty),
            "text": str(text), "cut": str(cut), "ts": str(ts), "pt2": str(pt2), "odd": str(odd),
            "missing": str(tmp_path / "nowhere.onnx")}


@pytest.mark.parametrize("model, extra, message", [
    ("missing", {}, r"nowhere\.onnx not found; expected an ONNX model \(\.onnx\)"),
    ("empty", {}, r"empty\.onnx is empty \(0 bytes\); expected an ONNX model"),
    ("text", {}, r"notes\.onnx is not a valid ONNX model \(Error parsing message"),
    ("cut", {"backend": "onnxruntime"}, r"cut\.onnx is not a valid ONNX model"),
    ("ts", {}, r"bad\.torchscript is not a TorchScript file"),
    ("pt2", {}, r"bad\.pt2 is not a torch\.export program"),
    ("odd", {}, r"model\.bin: cannot tell the backend from the suffix '\.bin'"),
    ("yolox", {"input_size": [320, 320]}, r"yolox_nano\.onnx takes input 416x416 .* but input_size is 320x320"),
    ("fastestdet", {"head": "yolox"}, r"FastestDet\.onnx: head 'yolox' at input 352x352 expects output .* "
                                      r"got \(1, 85, 22, 22\)"),
    ("yolox", {"head": "yolov8"}, r"head 'yolov8' at input 416x416 expects output \(B, 4\+nc, N\)"),
    ("yolox", {"classes": ["a", "b"]}, r"classes has 2 names, but the model outputs 80 classes"),
    ("yolox", {"keep_classes": ["persn"]}, r"keep_classes: unknown class 'persn' \(did you mean 'person'\?\)"),
])
def test_bad_model_files(tmp_path, model, extra, message):
    files = _bad_files(tmp_path)
    with pytest.raises(ConfigError, match=message) as info:
        make_stage(model=files[model], **extra)
    assert "\n" not in str(info.value) and str(info.value).startswith("detect: ")


def test_classes_file_and_mismatch(tmp_path):
    good = shared_path("models", "yolox_nano", "coco80_classes.txt")
    stage = make_stage(model=str(shared_path(*YOLOX)), classes=str(good))
    assert stage.names[2] == "car" and len(stage.names) == 80
    short = tmp_path / "three.txt"
    short.write_text("a\nb\n\nc\n")
    with pytest.raises(ConfigError, match=r"classes file .*three\.txt has 3 names, but the model outputs 80"):
        make_stage(model=str(shared_path(*YOLOX)), classes=str(short))


@pytest.mark.parametrize("raw, message", [
    ({"model": "m.onnx", "iou_threshold": 1.5}, "detect.iou_threshold: expected 0 < x <= 1, got 1.5"),
    ({"model": "m.onnx", "device": "gpu"}, "detect.device: expected auto, cpu, cuda or cuda:N"),
    ({"model": "m.onnx", "input_size": 400}, "detect.input_size: expected multiples of 32"),
    ({"model": "m.onnx", "head": "yolov7"}, "detect.head: expected one of"),
    ({}, "detect.model: required"),
])
def test_params_errors(raw, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_or_raise(DetectParams, raw, "detect")


def test_traced_forward_equals_eager(first_frame):
    """trace: true (default) runs the converted YOLOX graph as one TorchScript call: same boxes."""
    model = str(shared_path(*YOLOX))
    traced, eager = make_stage(model=model, backend="torch"), make_stage(model=model, backend="torch", trace=False)
    flipped = np.ascontiguousarray(first_frame[:, ::-1])
    for image in (first_frame, flipped):
        assert_same(run(traced, [image])[0], run(eager, [image])[0], px=1e-3, score=1e-5)
    assert traced.summary()["trace"] == "1 traced" and "trace" not in eager.summary()


def test_every_batch_size_is_traced_in_setup(first_frame):
    """batch 3, torch backend: setup traces the forward pass for batch sizes 1, 2 and 3 (a partial
    batch does not stall on its first trace); a 2-frame batch then gives the eager stage's boxes."""
    model = str(shared_path(*YOLOX))
    stage = make_stage(model=model, backend="torch", batch=3)
    assert stage.summary()["trace"] == "3 traced"
    eager = make_stage(model=model, backend="torch", batch=3, trace=False)
    flipped = np.ascontiguousarray(first_frame[:, ::-1])
    for a, b in zip(run(stage, [first_frame, flipped]), run(eager, [first_frame, flipped])):
        assert_same(a, b, px=1e-3, score=1e-5)
    assert stage.summary()["trace"] == "3 traced"
