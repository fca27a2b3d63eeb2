"""Model backends: load a detector file and run it on a device batch.

- `torch`: an ONNX graph converted to torch modules with onnx2torch, so it runs on the same device
  (and CUDA stream) as the other stages, in fp16 when asked. onnx2torch imports torchvision only in its
  NMS and RoIAlign converters (detectors exported without NMS need neither); when torchvision is
  absent a stand-in module is put in sys.modules just for the import, whose ops raise a clear error
  if a graph ever uses them, and removed again afterwards.
- `onnxruntime`: CPU or CUDA execution provider; a file with a fixed batch of 1 is relaxed in memory
  to a free batch dimension where the graph allows it (else frames run one by one).
- `torchscript`: torch.jit.load (e.g. Ultralytics `format=torchscript`).
- `export`: torch.export.load of a .pt2 program.

Convention: `Model.__call__(x)` takes (B,3,h,w) in `Model.dtype` on `Model.device` and returns the
first output as a tensor on that device. Errors about the file are `ModelError` naming it.
"""
from __future__ import annotations

import importlib.util
import logging
import sys
import types
import warnings
from pathlib import Path

import torch

from .weights import ModelError

BACKENDS = ("torch", "onnxruntime", "torchscript", "export")
SUFFIX_BACKEND = {".onnx": "torch", ".pt2": "export", ".torchscript": "torchscript", ".ts": "torchscript",
                  ".jit": "torchscript", ".pt": "torchscript", ".pth": "torchscript"}


def backend_for(path: Path, backend: str, device_type: str = "cuda") -> str:
    """`auto` -> the backend for the file's suffix (an .onnx file: torch on a GPU, beside the other
    stages; onnxruntime on the CPU, where it runs YOLOX-Nano ~2x faster than the converted graph,
    when it is installed); else `backend` itself."""
    if backend != "auto":
        if backend not in BACKENDS:
            raise ValueError(f"backend: expected auto or one of {', '.join(BACKENDS)}, got {backend!r}")
        return backend
    found = SUFFIX_BACKEND.get(path.suffix.lower())
    if found is None:
        raise ModelError(f"model file {path}: cannot tell the backend from the suffix {path.suffix!r}; set backend: "
                         f"to one of {', '.join(BACKENDS)} (suffixes: {', '.join(SUFFIX_BACKEND)})")
    if found == "torch" and device_type == "cpu" and importlib.util.find_spec("onnxruntime") is not None:
        return "onnxruntime"
    return found


def file_kind(path: Path, backend: str) -> str:
    """What the file should be ('onnx', 'torchscript' or 'export'), for messages before it is read."""
    if backend == "auto":
        backend = SUFFIX_BACKEND.get(path.suffix.lower(), "torch")
    return backend if backend in ("torchscript", "export") else "onnx"


def _first_line(exc: BaseException, limit: int = 160) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    if len(line) > limit and ". " in line:
        line = line[:line.index(". ") + 1]
    return line if len(line) <= limit else line[:limit] + "..."


def _torchvision_shim() -> tuple[types.ModuleType, types.ModuleType]:
    def unavailable(*_args, **_kwargs):
        raise RuntimeError("this ONNX graph uses NonMaxSuppression or RoiAlign, which onnx2torch runs through "
                           "torchvision, and torchvision is not installed: export the model without NMS (the "
                           "detect stage does its own), or use backend: onnxruntime")

    vision = types.ModuleType("torchvision")
    ops = types.ModuleType("torchvision.ops")
    ops.nms = ops.roi_align = ops.box_convert = ops.batched_nms = unavailable
    vision.ops = ops
    vision.__vidpipe_shim__ = True
    return vision, ops


def import_onnx2torch():
    """onnx2torch, importable without torchvision (see the module docstring)."""
    try:
        import torchvision  # noqa: F401
    except Exception:  # noqa: BLE001 - absent or broken: either way onnx2torch must not need it
        vision, ops = _torchvision_shim()
        saved = {k: sys.modules.get(k) for k in ("torchvision", "torchvision.ops")}
        sys.modules["torchvision"], sys.modules["torchvision.ops"] = vision, ops
        try:
            import onnx2torch
        finally:
            for key, value in saved.items():
                if value is None:
                    sys.modules.pop(key, None)
                else:
                    sys.modules[key] = value
        return onnx2torch
    import onnx2torch

    return onnx2torch


def load_onnx(path: Path):
    """The parsed ONNX proto, or ModelError naming the file."""
    import onnx

    try:
        proto = onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 - protobuf raises several types
        raise ModelError(f"model file {path} is not a valid ONNX model ({_first_line(exc)}); "
                         f"expected an ONNX model (.onnx)") from None
    inits = {i.name for i in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in inits]
    if not proto.graph.node or not inputs or not proto.graph.output:
        raise ModelError(f"model file {path} is not a valid ONNX model (no graph, inputs or outputs); "
                         f"expected an ONNX model (.onnx)")
    return proto


def onnx_input_shape(proto) -> tuple:
    """First graph input's dims: ints where fixed, None where free."""
    inits = {i.name for i in proto.graph.initializer}
    first = next(i for i in proto.graph.input if i.name not in inits)
    return tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                 for d in first.type.tensor_type.shape.dim)


class Model:
    """A loaded network. Attributes: backend, path, device (torch.device), dtype (the input dtype),
    input_shape (dims from the file, None where free or unknown), max_batch (None = any)."""

    def __init__(self, backend: str, path: Path, device: torch.device, run, dtype=torch.float32,
                 input_shape: tuple | None = None, max_batch: int | None = None, module=None) -> None:
        self.backend, self.path, self.device, self.dtype = backend, path, device, dtype
        self.input_shape, self.max_batch = input_shape, max_batch
        self._run, self.module = run, module
        self.graphed = None

    @property
    def input_hw(self) -> tuple[int, int] | None:
        s = self.input_shape
        if s is None or len(s) != 4 or s[2] is None or s[3] is None:
            return None
        return int(s[2]), int(s[3])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        run = self.graphed or self._run
        if self.max_batch is None or x.shape[0] <= self.max_batch:
            return run(x)
        return torch.cat([run(x[i:i + self.max_batch]) for i in range(0, x.shape[0], self.max_batch)])

    def wrap_run(self, wrapper):
        """Replace the forward call by wrapper(forward) (e.g. a one-call trace of it); returns it."""
        self._run = wrapper(self._run)
        return self._run

    def use_cuda_graphs(self, max_shapes: int = 4) -> None:
        """Replay the forward pass as CUDA graphs (torch backends on CUDA; see cudagraph.py)."""
        if self.device.type == "cuda" and self.module is not None:
            from .cudagraph import GraphedForward

            self.graphed = GraphedForward(self._run, max_shapes)

    def to_float(self) -> None:
        """Back to fp32 (when a file does not run in fp16)."""
        if self.module is not None:
            self.module.float()
        self.dtype = torch.float32

    def probe(self, input_hw: tuple[int, int], batch: int = 1) -> tuple[int, ...]:
        """Run zeros of (1,3,h,w) (and of (2,3,h,w) when batch > 1, falling back to one frame at a
        time when the file fixes the batch); return the output shape for one image."""
        shape = (1, 3, *input_hw)
        try:
            out = self._run(torch.zeros(shape, dtype=self.dtype, device=self.device))
        except Exception as exc:  # noqa: BLE001 - any failure here is the file not fitting the input
            raise ModelError(f"model file {self.path} ({self.backend}) failed on an input of shape {shape} "
                             f"({_first_line(exc)}); check input_size and the model's expected input") from None
        if batch > 1 and self.max_batch != 1:
            try:
                two = self._run(torch.zeros((2, 3, *input_hw), dtype=self.dtype, device=self.device))
                if two.shape[0] != 2:
                    raise ValueError("batch dimension not carried through")
            except Exception:  # noqa: BLE001 - a fixed-batch graph: run frames one by one
                self.max_batch = 1
        return tuple(out.shape)


def _first_tensor(out):
    while isinstance(out, (list, tuple)):
        out = out[0]
    if isinstance(out, dict):
        out = next(iter(out.values()))
    if not isinstance(out, torch.Tensor):
        raise ModelError(f"expected the model to return a tensor, got {type(out).__name__}")
    return out


def _module_runner(module):
    def run(x):
        with torch.inference_mode():
            return _first_tensor(module(x))
    return run


def load_torch_onnx(path: Path, device: torch.device, half: bool) -> Model:
    proto = load_onnx(path)
    onnx2torch = import_onnx2torch()
    # onnx2torch's Slice indexes with a list; harmless here, and torch warns about it on every model
    warnings.filterwarnings("ignore", message="Using a non-tuple sequence for multidimensional indexing")
    try:
        module = onnx2torch.convert(proto).eval()
    except Exception as exc:  # noqa: BLE001 - unsupported ops, opsets
        raise ModelError(f"model file {path}: onnx2torch cannot convert it ({_first_line(exc)}); "
                         f"try backend: onnxruntime") from None
    module = module.to(device)
    for weight in module.parameters():     # inference only; also lets a trace hold them as constants
        weight.requires_grad_(False)
    if half:
        module = module.half()
    return Model("torch", path, device, _module_runner(module), torch.float16 if half else torch.float32,
                 onnx_input_shape(proto), module=module)


def load_torchscript(path: Path, device: torch.device, half: bool) -> Model:
    try:
        with warnings.catch_warnings():  # torch >= 2.10 marks torch.jit deprecated; the files still load
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location=device).eval()
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"model file {path} is not a TorchScript file ({_first_line(exc)}); expected a "
                         f"torch.jit.save file (a weights-only .pt checkpoint needs its code: export it first)") from None
    if half:
        module = module.half()
    return Model("torchscript", path, device, _module_runner(module),
                 torch.float16 if half else torch.float32, None, module=module)


def load_export(path: Path, device: torch.device, half: bool) -> Model:
    quiet = logging.getLogger("torch.export")
    level = quiet.level
    try:
        quiet.setLevel(logging.ERROR)  # it logs a traceback before raising on a bad file
        program = torch.export.load(str(path))
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"model file {path} is not a torch.export program ({_first_line(exc)}); "
                         f"expected a .pt2 file from torch.export.save") from None
    finally:
        quiet.setLevel(level)
    shape = None
    user = set(program.graph_signature.user_inputs)
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name in user:
            val = node.meta.get("val")
            if val is not None:
                shape = tuple(int(d) if isinstance(d, int) else None for d in val.shape)
            break
    module = program.module().to(device)
    if half:
        module = module.half()
    return Model("export", path, device, _module_runner(module), torch.float16 if half else torch.float32,
                 shape, module=module)


def _relaxed_batch(proto):
    """A copy whose input/output batch dimension is free (value_info dropped, to be re-inferred)."""
    relaxed = type(proto)()
    relaxed.CopyFrom(proto)
    for value in list(relaxed.graph.input) + list(relaxed.graph.output):
        dims = value.type.tensor_type.shape.dim
        if len(dims):
            dims[0].dim_param = "batch"
    del relaxed.graph.value_info[:]
    return relaxed


def load_onnxruntime(path: Path, device: torch.device, half: bool) -> Model:
    import numpy as np
    import onnxruntime as ort

    proto = load_onnx(path)
    if device.type == "cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise ModelError(f"backend onnxruntime on {device}: this onnxruntime has no CUDAExecutionProvider "
                             f"(install onnxruntime-gpu), or use backend: torch")
        providers = [("CUDAExecutionProvider", {"device_id": device.index or 0}), "CPUExecutionProvider"]
    else:
        providers = ["CPUExecutionProvider"]
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, torch.get_num_threads())
    # no busy-waiting between ops: the pipeline's other threads (decode, encode, other stages) need the cores
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 4  # probes of a fixed-batch graph fail on purpose; errors still raise
    shape = onnx_input_shape(proto)
    try:
        try:
            session = ort.InferenceSession(_relaxed_batch(proto).SerializeToString(), options, providers=providers)
            max_batch = None
        except Exception:  # noqa: BLE001 - the graph pins its batch: keep it
            session = ort.InferenceSession(proto.SerializeToString(), options, providers=providers)
            max_batch = 1
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"model file {path}: onnxruntime cannot load it ({_first_line(exc)})") from None
    in_name, out_name = session.get_inputs()[0].name, session.get_outputs()[0].name
    in_type = np.float16 if "float16" in session.get_inputs()[0].type else np.float32

    def run(x: torch.Tensor) -> torch.Tensor:
        x = x.to(torch.float16 if in_type is np.float16 else torch.float32).contiguous()
        if device.type == "cuda":
            binding = session.io_binding()
            binding.bind_input(in_name, "cuda", device.index or 0, in_type, tuple(x.shape), x.data_ptr())
            binding.bind_output(out_name)
            session.run_with_iobinding(binding)
            return torch.from_numpy(binding.copy_outputs_to_cpu()[0]).to(device)
        return torch.from_numpy(session.run([out_name], {in_name: x.numpy()})[0])

    return Model("onnxruntime", path, device, run, torch.float32, shape, max_batch)


LOADERS = {"torch": load_torch_onnx, "onnxruntime": load_onnxruntime, "torchscript": load_torchscript,
           "export": load_export}


def load(path: Path, backend: str, device, half: bool = False) -> Model:
    """Load `path` with `backend` (resolved from the suffix when 'auto') on `device`; `half` = fp16
    weights and inputs (torch backends; onnxruntime runs the file's own precision)."""
    device = torch.device(device)
    name = backend_for(path, backend, device.type)
    return LOADERS[name](path, device, half and name != "onnxruntime")
