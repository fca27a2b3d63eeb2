"""Keypoint detectors/descriptors and matchers from the classic toolbox, picked by name.

Convention: images are (H,W) uint8 grey; keypoint positions are (N,2) float32 pixels (x, y),
origin top-left; descriptors are (N,D) uint8 (binary: orb, brisk, akaze) or float32 (sift).
"""
from __future__ import annotations

import cv2
import numpy as np

DETECTORS = ("orb", "sift", "brisk", "akaze")
MATCHERS = ("bf", "flann")
_FACTORY = {"orb": "ORB_create", "sift": "SIFT_create", "brisk": "BRISK_create", "akaze": "AKAZE_create"}
BINARY = frozenset({"orb", "brisk", "akaze"})


def available_detectors() -> list[str]:
    """The detector names this OpenCV build provides, in DETECTORS order."""
    return [name for name in DETECTORS if hasattr(cv2, _FACTORY[name])]


def make_detector(name: str, max_features: int = 1000):
    """An OpenCV Feature2D for `name` (one of DETECTORS). Raises ValueError listing what is available.

    Convention: max_features >= 1 bounds the keypoints kept per image (brisk/akaze: the strongest)."""
    if name not in DETECTORS or not hasattr(cv2, _FACTORY[name]):
        raise ValueError(f"detector {name!r} is not available in OpenCV {cv2.__version__}; "
                         f"available: {', '.join(available_detectors())}")
    if max_features < 1:
        raise ValueError(f"max_features: expected >= 1, got {max_features}")
    if name == "orb":
        return cv2.ORB_create(nfeatures=max_features, scaleFactor=1.2, nlevels=8, fastThreshold=10)
    if name == "sift":
        return cv2.SIFT_create(nfeatures=max_features)
    if name == "brisk":
        return cv2.BRISK_create(thresh=20)
    return cv2.AKAZE_create(threshold=0.0005)


def detect(detector, gray: np.ndarray, mask: np.ndarray | None = None,
           max_features: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Detect and describe. Convention: gray (H,W) uint8, mask (H,W) uint8 (nonzero = search);
    returns xy (N,2) float32 and descriptors (N,D) or None when nothing was found; at most
    max_features of the strongest keypoints are kept."""
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError(f"detect: expected (H,W) uint8 grey image, got {gray.shape} {gray.dtype}")
    keypoints, desc = detector.detectAndCompute(gray, mask)
    if desc is None or len(keypoints) == 0:
        return np.zeros((0, 2), np.float32), None
    if max_features is not None and len(keypoints) > max_features:
        order = np.argsort([-k.response for k in keypoints])[:max_features]
        keypoints = [keypoints[i] for i in order]
        desc = desc[order]
    xy = np.array([k.pt for k in keypoints], np.float32).reshape(-1, 2)
    return xy, desc


class Matcher:
    """Nearest-neighbour descriptor matching with Lowe's ratio test.

    Convention: kind is 'bf' (brute force) or 'flann' (LSH for binary descriptors, KD-trees for
    float ones); 0 < ratio <= 1 (a match is kept when best < ratio * second best)."""

    def __init__(self, kind: str = "bf", binary: bool = True, ratio: float = 0.8) -> None:
        if kind not in MATCHERS:
            raise ValueError(f"matcher: expected one of {', '.join(MATCHERS)}, got {kind!r}")
        if not 0 < ratio <= 1:
            raise ValueError(f"ratio: expected 0 < x <= 1, got {ratio}")
        self.kind, self.binary, self.ratio = kind, binary, ratio
        if kind == "bf":
            self._m = cv2.BFMatcher(cv2.NORM_HAMMING if binary else cv2.NORM_L2)
        elif binary:  # FLANN_INDEX_LSH
            self._m = cv2.FlannBasedMatcher(dict(algorithm=6, table_number=6, key_size=12, multi_probe_level=1),
                                            dict(checks=50))
        else:  # FLANN_INDEX_KDTREE
            self._m = cv2.FlannBasedMatcher(dict(algorithm=1, trees=5), dict(checks=50))

    def match(self, query: np.ndarray | None, train: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Index pairs (query_idx, train_idx), int64 (M,), that pass the ratio test."""
        empty = (np.zeros(0, np.int64), np.zeros(0, np.int64))
        if query is None or train is None or len(query) == 0 or len(train) < 2:
            return empty
        if not self.binary:
            query, train = np.float32(query), np.float32(train)
        qi, ti = [], []
        for pair in self._m.knnMatch(query, train, k=2):
            if len(pair) == 2 and pair[0].distance < self.ratio * pair[1].distance:
                qi.append(pair[0].queryIdx)
                ti.append(pair[0].trainIdx)
        if not qi:
            return empty
        return np.asarray(qi, np.int64), np.asarray(ti, np.int64)
