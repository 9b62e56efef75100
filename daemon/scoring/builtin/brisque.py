"""BRISQUE (Mittal, Moorthy and Bovik, 2012) with the SVM the `brisque` package ships.

The package's own ``BRISQUE.score()`` fails under numpy 2 (it calls ``float()``
on one-element arrays) and computes its coefficients twice with scipy's slow
2-D convolution. The trained model is the valuable part, so this module
computes the same 36 features (MSCN coefficients and their four pairwise
products, fitted with an asymmetric generalised Gaussian, at two scales) with
OpenCV on a 384-px grey view, scales them with the package's
``normalize.pickle`` and asks the package's ``svm.txt`` model through libsvm.

raw is BRISQUE's quality score: about 0-20 for clean photos, higher with blur,
noise and compression artefacts. normalised = 1 - raw / 100, clipped to 0..1.
"""

from __future__ import annotations

import math
import os
import pickle
import threading
from typing import Any

import cv2
import numpy as np
from scipy import special

from ..base import Score

VERSION = "3"  # 2: its view from the box-averaged 512-px one (decode.box_factor); 3: from the resampled one again
EDGE = 384  # long edge of the grey view the features are computed on

_ALPHAS = np.arange(0.2, 10.0, 0.001)
_RHO = special.gamma(2.0 / _ALPHAS) ** 2 / (special.gamma(1.0 / _ALPHAS) * special.gamma(3.0 / _ALPHAS))


def mscn(grey: np.ndarray) -> np.ndarray:
    """Mean-subtracted, contrast-normalised coefficients of a 0..1 float32 grey image (7x7
    Gaussian, sigma 7/6): (grey - mu) / (sqrt(|blur(grey^2) - mu^2|) + 1/255), mu = blur(grey)."""
    mu = cv2.GaussianBlur(grey, (7, 7), 7.0 / 6.0, borderType=cv2.BORDER_CONSTANT)
    var = cv2.GaussianBlur(cv2.multiply(grey, grey), (7, 7), 7.0 / 6.0, borderType=cv2.BORDER_CONSTANT)
    # the same float32 operations as numpy's expression of the formula, to the bit (tests/test_scorers.py),
    # in OpenCV's calls and in place: 0.31 ms a scale instead of 0.37 on the 384-px view
    sigma = cv2.sqrt(cv2.absdiff(var, cv2.multiply(mu, mu)))
    sigma += np.float32(1.0 / 255.0)
    out = cv2.subtract(grey, mu)
    return np.divide(out, sigma, out=out)


def aggd_fit(x: np.ndarray) -> tuple[float, float, float, float]:
    """Asymmetric generalised Gaussian fit: (alpha, mean, sigma_left^2, sigma_right^2)."""
    # the signed halves and their sums through OpenCV's vectorised threshold, countNonZero
    # and norm: one pass each, 2.5x faster than numpy's minimum/maximum, dot and sum; the
    # right half's sum of squares is the whole's less the left's
    x = np.ascontiguousarray(x, dtype=np.float32)
    x = x.reshape(1, -1) if x.ndim != 2 else x
    neg = cv2.threshold(x, 0.0, 0.0, cv2.THRESH_TOZERO_INV)[1]  # x where x <= 0, else 0
    n = x.size
    n_left = cv2.countNonZero(neg)
    ss_left = cv2.norm(neg, cv2.NORM_L2SQR)
    ss_right = max(cv2.norm(x, cv2.NORM_L2SQR) - ss_left, 0.0)
    left_sq = ss_left / n_left if n_left else 1e-12
    right_sq = ss_right / (n - n_left) if n > n_left else 1e-12
    sigma_l, sigma_r = np.sqrt(left_sq), np.sqrt(right_sq)
    gamma = sigma_l / max(sigma_r, 1e-12)
    mean_sq = (ss_left + ss_right) / n if n else 0.0
    mean_abs = cv2.norm(x, cv2.NORM_L1) / n if n else 0.0
    r_hat = mean_abs**2 / mean_sq if mean_sq > 0 else 0.0
    big_r = r_hat * (gamma**3 + 1) * (gamma + 1) / (gamma**2 + 1) ** 2
    alpha = float(_ALPHAS[_nearest_rho(big_r)])
    const = np.sqrt(special.gamma(1.0 / alpha) / special.gamma(3.0 / alpha))
    mean = float((sigma_r - sigma_l) * const * special.gamma(2.0 / alpha) / special.gamma(1.0 / alpha))
    return alpha, mean, left_sq, right_sq


def _nearest_rho(r: float) -> int:
    """The index of the tabulated rho nearest ``r`` (the first of two as near, as np.argmin
    of the squared distances gives): rho rises with alpha, so a binary search finds it and
    its neighbour, 0.004 ms instead of the whole table's 0.017, ten times a photo."""
    i = int(np.searchsorted(_RHO, r))
    if not 0 < i < _RHO.size or not math.isfinite(r):
        return int(np.argmin((_RHO - r) ** 2))  # off the table's ends (or not a number): as before
    return i - 1 if (_RHO[i - 1] - r) ** 2 <= (_RHO[i] - r) ** 2 else i


def features(grey: np.ndarray) -> list[float]:
    """The 18 BRISQUE features of one scale, in the order the shipped model was trained on."""
    m = mscn(grey)
    alpha, _, l2, r2 = aggd_fit(m)
    out = [alpha, (l2 + r2) / 2.0]
    # the products of neighbours (horizontal, vertical, both diagonals) through OpenCV: the same
    # float32 products as numpy's, at half its time on these strided views
    for pair in (cv2.multiply(m[:, :-1], m[:, 1:]), cv2.multiply(m[:-1, :], m[1:, :]),
                 cv2.multiply(m[:-1, :-1], m[1:, 1:]), cv2.multiply(m[1:, :-1], m[:-1, 1:])):
        a, mean, l2, r2 = aggd_fit(pair)
        out += [a, mean, l2, r2]
    return out


class _Model:
    """The package's SVM and feature ranges, loaded once."""

    _lock = threading.Lock()
    _instance: "_Model | None" = None

    def __init__(self) -> None:
        from brisque.models import MODEL_PATH
        from libsvm import svm, svmutil

        self.svmutil = svmutil
        self.model = svmutil.svm_load_model(os.path.join(MODEL_PATH, "svm.txt"))
        with open(os.path.join(MODEL_PATH, "normalize.pickle"), "rb") as fh:
            params: dict[str, Any] = pickle.load(fh)  # noqa: S301 - the package's own shipped file
        self.low = np.array([float(v) for v in params["min_"]], dtype=np.float64)
        self.high = np.array([float(v) for v in params["max_"]], dtype=np.float64)
        # the model's support vectors, weights and offset as arrays: its decision function in
        # numpy costs 0.07 ms, libsvm's call through ctypes (the node array, the predict) 0.5-1.5
        # ms, and they agree to 1e-11 (tests/test_scorers.py)
        self.rbf: tuple[np.ndarray, np.ndarray, float, float] | None = None
        param = self.model.param
        if param.svm_type == svm.svm_forms.EPSILON_SVR and param.kernel_type == svm.kernel_names.RBF:
            vectors = np.zeros((self.model.l, len(self.low)), dtype=np.float64)
            for i, sv in enumerate(self.model.get_SV()):
                for index, value in sv.items():
                    if 0 < index <= vectors.shape[1]:
                        vectors[i, index - 1] = value
            weights = np.array([c[0] for c in self.model.get_sv_coef()], dtype=np.float64)
            self.rbf = vectors, weights, float(param.gamma), float(self.model.rho[0])

    @classmethod
    def get(cls) -> "_Model":
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def predict(self, feats: list[float]) -> float:
        scaled = -1.0 + 2.0 * (np.asarray(feats, dtype=np.float64) - self.low) / (self.high - self.low)
        if self.rbf is not None:  # libsvm's epsilon-SVR decision: sum of w_i exp(-gamma |x - sv_i|^2) - rho
            vectors, weights, gamma, rho = self.rbf
            diff = vectors - scaled
            return float(weights @ np.exp(-gamma * np.einsum("ij,ij->i", diff, diff)) - rho)
        return self.predict_libsvm(scaled)

    def predict_libsvm(self, scaled: np.ndarray) -> float:
        """libsvm's own prediction for features already scaled to -1..1."""
        nodes, _ = self.svmutil.gen_svm_nodearray([float(v) for v in scaled], isKernel=False)
        prob = (self.svmutil.c_double * 1)()
        return float(self.svmutil.libsvm.svm_predict_probability(self.model, nodes, prob))


class Brisque:
    """No-reference technical quality from natural-scene statistics (see the module text)."""

    name, task, version = "brisque", "technical", VERSION

    def __init__(self) -> None:
        self._model = _Model.get()

    def score(self, image: "Decoded") -> list[Score]:  # noqa: F821
        grey = image.grey_resized(EDGE).astype(np.float32) / 255.0
        half = cv2.resize(grey, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_CUBIC)
        raw = self._model.predict(features(grey) + features(half))
        return [Score(self.name, self.task, raw, min(1.0, max(0.0, 1.0 - raw / 100.0)), self.version)]
