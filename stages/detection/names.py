"""Class names: from a file (one per line), a list, or COCO's 80 names for 80-class models.

Convention: names are indexed by the model's output class channel (0-based).
"""
from __future__ import annotations

from pathlib import Path

COCO80 = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
)


def read_names(path: str | Path) -> tuple[str, ...]:
    """One name per non-empty line (surrounding spaces stripped); ValueError naming the file."""
    p = Path(path).expanduser()
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"classes file {p} cannot be read ({type(exc).__name__}: {exc})") from None
    names = tuple(line.strip() for line in lines if line.strip())
    if not names:
        raise ValueError(f"classes file {p} has no names (expected one class name per line)")
    return names


def class_names(spec, num_classes: int) -> tuple[str, ...]:
    """Names for a model with `num_classes` outputs: `spec` is a file path, a list of names, or None
    (COCO's names when num_classes == 80, else 'class0', 'class1', ...)."""
    if spec is None:
        return COCO80 if num_classes == 80 else tuple(f"class{i}" for i in range(num_classes))
    names = read_names(spec) if isinstance(spec, (str, Path)) else tuple(str(n) for n in spec)
    if len(names) != num_classes:
        where = f"classes file {spec}" if isinstance(spec, (str, Path)) else "classes"
        raise ValueError(f"{where} has {len(names)} names, but the model outputs {num_classes} classes")
    return names
