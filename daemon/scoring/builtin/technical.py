"""Classic image measures, each on a small fixed-size view of the photo so the
numbers do not depend on the camera's resolution.

Every scorer keeps what it measured as ``raw`` and maps it to 0..1 (1 = better)
by a fixed formula documented on the class; nothing is normalised per batch,
so a photo's score never depends on the other photos scored with it.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..base import Score
from .compression import block_grid

VERSION = "4"  # 3: views at an integer fraction of the decode (decode.box_factor); 4: not the 512-px grey one
SHARPNESS_EDGE = 512  # long edge of the grey view sharpness and the noise measure's luma part are measured on
COLOUR_EDGE = 64  # colourfulness on a median-filtered, area-averaged view: sensor noise averages out
COLOUR_VIEW_EDGE = 4 * COLOUR_EDGE  # the RGB view noise, colourfulness, exposure and contrast measure

_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)


def _saturate(value: float, half: float) -> float:
    """0..1, 0.5 at ``half``: value / (value + half)."""
    return float(value / (value + half)) if value > 0 else 0.0


def _ksize(sigma: float) -> tuple[int, int]:
    """A Gaussian's kernel cut at 2 sigma (OpenCV's own choice for float images is 4 sigma,
    twice the cost for a tail of 5 % of the weight)."""
    n = 2 * int(math.ceil(2 * sigma)) + 1
    return n, n


def _derivative_energy(sigma: float) -> float:
    """Sum of squares of the kernel 'Gaussian blur of ``sigma`` then a central difference':
    white noise of variance v gives a derivative of variance v x this."""
    n = 8 * int(math.ceil(sigma)) + 9
    impulse = np.zeros((n, n), np.float32)
    impulse[n // 2, n // 2] = 1.0
    kernel = cv2.Sobel(cv2.GaussianBlur(impulse, _ksize(sigma), sigma), cv2.CV_32F, 1, 0, ksize=1, scale=0.5)
    return float((kernel * kernel).sum())


class Sharpness:
    """Edge acuity on a 512-px grey view: how steep the strongest edges are at a fine
    scale compared with a coarse one, in the direction where they are softest.

    Edges: the 4 % of pixels with the steepest coarse gradient (Gaussian sigma 3 px,
    then central differences). For each of four directions (0, 45, 90, 135 degrees)
    the steepest quarter of them in that direction give
    a = sqrt((sum of fine derivatives^2 (sigma 1 px) - n x noise) /
    (sum of coarse derivatives^2 - n x noise)). A step edge gives a = 3 when crisp and
    sqrt((9 + b^2) / (1 + b^2)) when blurred by b px, so blur lowers it and motion
    blur lowers it in its own direction (hence the least of the four). It is a ratio
    of two derivatives of the same edges, so brightness, contrast and haze cancel
    out; the white-noise share of each sum (Immerkaer's estimate of the luma noise
    sigma times the kernel's energy) is taken off. Left out: pixels within 4 px of
    blown highlights (any channel >= 250) or crushed shadows (every channel <= 3;
    both limits widened by the luma noise sigma), whose clipped ramps look steeper
    than they were, and, when the decode shows JPEG's 8x8 grid (blockiness >= 0.15,
    see :mod:`.compression`), the pixels on and beside its lines.
    raw = the least directional acuity x (1 - the blown share of the frame beyond
    2 %) / (1 + (sigma / 60)^2): detail in blown highlights is gone, and heavy noise
    hides fine detail (0.99 at sigma 6, 0.86 at 24; without it the choice of the
    steepest pixels still favours noise a little, +2 % at sigma 24). On
    scikit-image's photos a crisp one measures 1.5-2.3, Gaussian blur of 1 px
    1.45-2.2, 2 px 1.3-1.9, 6 px about 1.1.
    normalised = (raw - 1) / 0.8, clipped to 0..1 (crisp textures such as gravel, at
    2.2, all score 1; a steeper scale keeps a blurred sibling's loss large)."""

    name, task, version = "sharpness", "technical", VERSION
    FINE, COARSE = 1.0, 3.0
    CANDIDATES = 0.04  # share of the view with the steepest coarse gradient the edges are chosen from
    LOW, SPAN = 1.0, 0.8
    MASKING = 60.0  # luma noise sigma at which noise hides half the detail's energy
    GRID_MIN = 0.15  # blockiness from which the block grid's lines are left out

    def __init__(self) -> None:
        self._fine_energy = _derivative_energy(self.FINE)
        self._coarse_energy = _derivative_energy(self.COARSE)

    def score(self, image: "Decoded") -> list[Score]:  # noqa: F821
        grey, cx, cy, magnitude = coarse_gradient(image)
        h, w = grey.shape
        fine = cv2.GaussianBlur(grey, _ksize(self.FINE), self.FINE)
        # candidates: the CANDIDATES share of pixels with the steepest coarse gradient, not beside
        # a clipped area; each direction then takes the steepest quarter of them in each tile
        sample = magnitude[::2, ::2].ravel()  # the threshold from a quarter of the pixels
        k = max(32, int(self.CANDIDATES * sample.size))
        threshold = max(float(np.partition(sample, sample.size - k)[sample.size - k]), 1e-3)
        where = np.flatnonzero(magnitude.ravel() >= threshold)
        ys, xs = np.divmod(where, w)
        clipped, blown = clipped_areas(image)
        keep = ~clipped[ys * clipped.shape[0] // h, xs * clipped.shape[1] // w]
        if np.count_nonzero(keep) >= where.size // 10:  # nearly all clipped: judge what there is
            where, ys, xs = where[keep], ys[keep], xs[keep]
        on_lines_x, on_lines_y = _grid_lines(image, w, h)
        # the fine central differences at the candidates only (replicated borders, as Sobel's),
        # gathered by flat index (half the cost of indexing by row and column)
        flat = fine.ravel()
        fx = 0.5 * (flat[where + (xs < w - 1)] - flat[where - (xs > 0)])
        fy = 0.5 * (flat[where + w * (ys < h - 1)] - flat[where - w * (ys > 0)])
        gx, gy = cx.ravel()[where], cy.ravel()[where]
        noise = luma_noise(image) ** 2
        take_n = max(8, where.size // 4)
        directions = []
        for i in range(4):
            c, s = math.cos(math.pi * i / 4), math.sin(math.pi * i / 4)
            steep = np.abs(c * gx + s * gy)
            if i == 0 and on_lines_x is not None:
                steep[on_lines_x[xs]] = 0.0  # a vertical block edge is a horizontal step
            elif i == 2 and on_lines_y is not None:
                steep[on_lines_y[ys]] = 0.0
            take = np.argpartition(steep, steep.size - take_n)[steep.size - take_n:] if steep.size > take_n else slice(None)
            n = steep[take].size
            f_sum = float(np.square(c * fx[take] + s * fy[take]).sum()) - n * self._fine_energy * noise
            c_sum = float(np.square(steep[take]).sum()) - n * self._coarse_energy * noise
            directions.append(_acuity(f_sum, c_sum))
        raw = min(directions) * (1.0 - 0.5 * max(0.0, blown - 0.02)) / (1.0 + noise / self.MASKING**2)
        value = (raw - self.LOW) / self.SPAN
        return [Score(self.name, self.task, raw, min(1.0, max(0.0, value)), self.version,
                      {"directions": [round(d, 3) for d in directions],
                       "noise_sigma": round(math.sqrt(noise), 2), "blown": round(blown, 4)})]


def _brightest(rgb: np.ndarray) -> np.ndarray:
    """The brightest channel of each pixel (elementwise: numpy's reduce over a 3-long last axis is slow)."""
    return np.maximum(np.maximum(rgb[..., 0], rgb[..., 1]), rgb[..., 2])


def _acuity(fine_sq: float, coarse_sq: float) -> float:
    return math.sqrt(max(fine_sq, 0.0) / coarse_sq) if coarse_sq > 1e-6 else 0.0


def coarse_gradient(image: "Decoded") -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # noqa: F821
    """The 512-px grey view as float, and its gradient after a Gaussian of sigma 3 px
    (x, y, magnitude), made once per photo: sharpness finds its edges in it, the noise
    measure its flattest areas."""

    def measure() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        # resampled to 512 px, not the decode's box average near it (decode.box_factor): the
        # luma noise read on a 1000-px decode's 2 x 2 box average is 40 % above the 512-px
        # resampled view's (the demo's hubble frame 3.2 against 2.2), enough to lose its
        # burst to a blurred sibling; the curves were set on the resampled view
        grey = image.grey_resized(SHARPNESS_EDGE, exact=True).astype(np.float32)
        coarse = cv2.GaussianBlur(grey, _ksize(Sharpness.COARSE), Sharpness.COARSE)
        cx, cy = (cv2.Sobel(coarse, cv2.CV_32F, dx, dy, ksize=1, scale=0.5) for dx, dy in ((1, 0), (0, 1)))
        return grey, cx, cy, cv2.magnitude(cx, cy)

    return image.shared("coarse_gradient", measure)


def clipped_areas(image: "Decoded") -> tuple[np.ndarray, float]:  # noqa: F821
    """On the 256-px view median-filtered (5x5), once per photo: where a clipped area (blown:
    any channel >= 250 - n; crushed: every channel <= 3 + n; n the luma noise sigma of
    :class:`Noise`) is within about 4 px of the 512-px view (regions only: a 3x3
    erosion first drops single specular pixels), and the blown share of the frame."""

    def measure() -> tuple[np.ndarray, float]:
        brightest = median_view(image)[0]
        margin = flat_luma_noise(image)[0]  # noise scatters a clipped area's pixels off the limit
        blown = brightest >= 250 - margin
        clipped = (blown | (brightest <= 3 + margin)).astype(np.uint8)
        near = cv2.dilate(cv2.erode(clipped, np.ones((3, 3), np.uint8)), np.ones((5, 5), np.uint8)) > 0
        return near, float(np.count_nonzero(blown)) / blown.size

    return image.shared("clipped_areas", measure)


def _grid_lines(image: "Decoded", w: int, h: int) -> tuple[np.ndarray | None, np.ndarray | None]:  # noqa: F821
    """For each column (row) of a w x h view: whether it lies on or beside a line of the
    JPEG block grid the decode shows (None when it shows none)."""
    grid = block_grid(image)
    if grid.blockiness < Sharpness.GRID_MIN:
        return None, None
    out = []
    for size, full, phase in ((w, image.rgb.shape[1], grid.phase_x), (h, image.rgb.shape[0], grid.phase_y)):
        lines = (np.arange(phase, full - 1, 8) + 1.0) * size / full - 0.5  # between pixel k and k + 1 of the decode
        near = np.zeros(size, bool)
        near[np.clip(np.round(lines[:, None] + np.array([-1.0, -0.5, 0.0, 0.5])[None, :]).astype(int), 0, size - 1)] = True
        out.append(near)
    return out[0], out[1]


def noise_response(image: "Decoded") -> np.ndarray:  # noqa: F821
    """|Immerkaer's noise operator| on the 512-px grey view, every second row and column,
    made once per photo. Over Gaussian noise its median is 0.6745 x 6 sigma."""

    def measure() -> np.ndarray:
        return np.abs(cv2.filter2D(coarse_gradient(image)[0], cv2.CV_32F, _NOISE_KERNEL))[::2, ::2]

    return image.shared("noise_response", measure)


def luma_noise(image: "Decoded") -> float:  # noqa: F821
    """Immerkaer's noise sigma of the 512-px grey view, from the median of the operator's
    response (robust to edges; texture counts too)."""

    def measure() -> float:
        response = noise_response(image).ravel()
        return float(np.partition(response, response.size // 2)[response.size // 2]) / (0.6745 * 6.0)

    return image.shared("luma_noise", measure)


def median_view(image: "Decoded") -> tuple[np.ndarray, np.ndarray]:  # noqa: F821
    """The 256-px view median-filtered (5x5) so noise neither fills nor empties a clipped
    area: its brightest channel and its luma, made once per photo."""

    def measure() -> tuple[np.ndarray, np.ndarray]:
        rgb = cv2.medianBlur(np.ascontiguousarray(colour_view(image)), 5)
        return _brightest(rgb), cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)

    return image.shared("median_view", measure)


def _linear(srgb: float) -> float:
    """sRGB 0-255 to linear light 0..1."""
    x = srgb / 255.0
    return x / 12.92 if x <= 0.04045 else ((x + 0.055) / 1.055) ** 2.4


class Exposure:
    """Brightness and clipped areas on the 256-px view, median-filtered (5x5) so noise
    neither fills crushed shadows nor lifts the mean. raw = mean luma (0-255).
    stops = log2 of the mean in linear light over mid-grey's (luma 118); below
    mid-grey, no more stops than the highlights' headroom: log2 of white over the
    brightest channel's level that only the brightest 0.5 % of the frame pass, in linear light. A photographer
    exposes for the highlights: a dusk or low-key scene whose brightest tones reach
    near white is dark by nature, and brightening it only clips them (version 3 read
    scikit-image's rocket, 2 stops under mid-grey with its lights near white, as
    under-exposed, and its copies brightened by 0.7-2.1 EV, lights blown, as better);
    an under-exposed photo leaves its headroom unused, and darkening widens both.
    level = 1 / (1 + (stops / 1.5)^2): 0.69 a stop off, 0.36 at two, 0.2 at three
    (the same both ways: what over-exposure loses, blown highlights, is counted by
    area below; a weaker curve for dark photos let a darkened copy of a bright scan
    beat the scan in tests/test_album_bursts.py).
    blown = share of pixels with any channel >= 250 - n (the share sharpness leaves
    out: :func:`clipped_areas`); crushed = share with luma <= 4 + n, n being the luma
    noise sigma of :class:`Noise` (noise scatters a clipped area's pixels off the limit).
    clipping = exp(-(blown - 1 %) / 0.1) x exp(-(crushed - 5 %) / 0.5), each excess
    floored at 0: a few specular highlights and a black backdrop are normal; every
    further 10 % of the frame blown costs a factor e (0.74 at 4 %, 0.05 at 30 %).
    normalised = level x clipping, so either defect alone pulls it down. Both
    factors are smooth and never reach 0 (version 2's linear ramps stopped at 0,
    so every level of over-exposure beyond the first tied with the next: on
    bench/quality.py the measure missed its own defect, tau 0.71)."""

    name, task, version = "exposure", "technical", "5"  # 3: smooth level and clipping curves; 4: a low-key scene's headroom; 5: its brightest 0.5 %, not 1 %
    MID = 118.0
    STOPS = 1.5
    BLOWN_OK, BLOWN_SCALE = 0.01, 0.1
    CRUSHED_OK, CRUSHED_SCALE = 0.05, 0.5
    HIGHLIGHT = 0.995  # the highlights: the brightest 0.5 % of the frame

    def score(self, image: "Decoded") -> list[Score]:  # noqa: F821
        brightest, grey = median_view(image)
        mean = float(grey.mean())
        n = grey.size
        margin = flat_luma_noise(image)[0]  # noise scatters a clipped area's pixels off the limit
        blown = clipped_areas(image)[1]  # the blown share sharpness counts too, from the same view
        crushed = float(np.count_nonzero(grey <= 4 + margin)) / n
        stops = math.log2(max(_linear(mean), 1e-4) / _linear(self.MID))
        if stops < 0:  # a dark scene whose highlights reach near white is low-key, not under-exposed
            hist = cv2.calcHist([brightest], [0], None, [256], [0, 256]).ravel()
            top = int(np.searchsorted(np.cumsum(hist), self.HIGHLIGHT * brightest.size))
            headroom = math.log2(1.0 / max(_linear(top), 1e-4))
            stops = -min(-stops, headroom)
        level = 1.0 / (1.0 + (stops / self.STOPS) ** 2)
        clipping = (math.exp(-max(0.0, blown - self.BLOWN_OK) / self.BLOWN_SCALE)
                    * math.exp(-max(0.0, crushed - self.CRUSHED_OK) / self.CRUSHED_SCALE))
        return [Score(self.name, self.task, mean, min(1.0, max(0.0, level * clipping)), self.version,
                      {"stops": round(stops, 2), "clipped_shadows": round(crushed, 4), "clipped_highlights": round(blown, 4)})]


def tone_view(image: "Decoded") -> np.ndarray:  # noqa: F821
    """The luma of the 256-px colour view smoothed by a Gaussian of 1.5 px, made once per photo
    (the luma first: a third of the pixels to smooth, the same tones to a grey level)."""

    def measure() -> np.ndarray:
        return cv2.GaussianBlur(cv2.cvtColor(colour_view(image), cv2.COLOR_RGB2GRAY), (0, 0), 1.5)

    return image.shared("tone_view", measure)


class Contrast:
    """Tonal range and haze on the luma of a 256-px colour view smoothed by a Gaussian
    of 1.5 px (noise averages out, so it adds no contrast).
    raw = the luma's standard deviation over its mean plus 14 (sRGB's offset: 0.055 x
    255; sRGB + 14 is a power of linear light, so both scale alike when the light does).
    A veil of haze or glare lifts the mean and flattens the spread, so it falls fast
    (scikit-image's astronaut: 0.54 clear, 0.35 under a veil of a quarter of the light,
    0.07 under 0.8); darkening the photo by up to 3 stops moves it by 0.06 at most, and
    brightening lowers it only as the highlights clip (version 4 measured the spread alone
    and charged the black level: brightening added contrast, and a darkened copy of a flat
    or high-key photo, text on paper, a brick wall, the moon's grey surface, read as less
    hazy than its original and outscored it). Clear everyday photos measure 0.37-0.54;
    flat ones (fur, the moon's surface, a scan of print, a brick wall) 0.1-0.22.
    normalised = min(1, raw / 0.4)."""

    name, task, version = "contrast", "technical", "5"  # 5: the spread over the mean, not the spread and the black level
    FULL, OFFSET = 0.4, 14.0

    def score(self, image: "Decoded") -> list[Score]:  # noqa: F821
        mean, std = cv2.meanStdDev(tone_view(image))
        variation = float(std[0, 0]) / (float(mean[0, 0]) + self.OFFSET)
        return [Score(self.name, self.task, variation, min(1.0, variation / self.FULL), self.version,
                      {"mean": round(float(mean[0, 0]), 1), "rms": round(float(std[0, 0]) / 255.0, 4)})]


class Noise:
    """Sensor noise, measured in the colour-difference channels (R-G and
    (R+G)/2-B) on a 256-px view (half the 512-px one, where JPEG's 4:2:0 chroma lives), with
    Immerkaer's noise operator and a median. Fine texture (grass, gravel,
    fabric) is nearly colourless detail and is not mistaken for noise; sensor
    noise is strongly colourful. raw = the estimated chroma sigma in grey
    levels: 0-0.8 for clean photos, about 6 for heavy high-ISO noise (sigma 25
    per channel) after JPEG compression. Noise left in luminance only is what
    BRISQUE sees in textured photos; in photos with flat areas it is measured too:
    luma sigma = Immerkaer's median estimate over the flattest quarter of the 512-px
    grey view (lowest coarse gradient, clipped pixels left out): 0.2-0.8 on clean
    photos, 1.2-2.5 with sigma-5 noise per channel, about 20 with sigma 35. Its weight
    is flat = clip((1.8 - q) / 0.8, 0, 1), q being that quarter's gradient bound
    (grey levels per px): a grass or gravel texture has no flat quarter (q > 2).
    normalised = the lower of 1 / (1 + (chroma sigma / 2.7)^3) (above 0.95 up to 1,
    0.5 at 2.7, 0.1 at 5.6) and 1 - flat + flat / (1 + (luma sigma / 4)^3)
    (0.99 at 0.8, 0.85 at 2.2, 0.5 at 4, 0.23 at 6): both curves have the same knee, so
    light grain (a real photo's own, luma sigma ~2) costs little and visible noise a lot;
    with a square the grain of a sharp frame cost more than a softer sibling's slight blur."""

    name, task, version = "noise", "technical", "5"  # 3: the luma curve's knee; 4: box-averaged views; 5: the grey one resampled again
    CLEAN, SCALE = 1.5, 1.5  # the face scorer's discount: see noise_quality
    HALF, LUMA_HALF = 2.7, 4.0
    FLAT_BOUND, FLAT_SPAN = 1.8, 0.8

    def score(self, image: "Decoded") -> list[Score]:  # noqa: F821
        sigma = chroma_noise(image)
        luma, bound = flat_luma_noise(image)
        flat = min(1.0, max(0.0, (self.FLAT_BOUND - bound) / self.FLAT_SPAN))
        chroma_q = 1.0 / (1.0 + (sigma / self.HALF) ** 3)
        luma_q = 1.0 - flat + flat / (1.0 + (luma / self.LUMA_HALF) ** 3)
        return [Score(self.name, self.task, sigma, min(chroma_q, luma_q), self.version,
                      {"luma_sigma": round(luma, 2), "flat": round(flat, 2)})]


def flat_luma_noise(image: "Decoded") -> tuple[float, float]:  # noqa: F821
    """:class:`Noise`'s luma sigma over the flattest quarter of the 512-px view, and that
    quarter's coarse-gradient bound, measured once per photo."""

    def measure() -> tuple[float, float]:
        grey, _, _, magnitude = coarse_gradient(image)
        response = noise_response(image)
        mags, tones = magnitude[::2, ::2], grey[::2, ::2]
        unclipped = (tones > 3) & (tones < 250)
        if np.count_nonzero(unclipped) < 64:
            return 0.0, float("inf")
        mags, response = mags[unclipped], response[unclipped]
        bound = float(np.partition(mags, mags.size // 4)[mags.size // 4])
        flat = response[mags <= bound]
        return float(np.partition(flat, flat.size // 2)[flat.size // 2]) / (0.6745 * 6.0), bound

    return image.shared("flat_luma_noise", measure)


def chroma_noise(image: "Decoded") -> float:  # noqa: F821
    """The chroma noise sigma of :class:`Noise`, measured once per photo (the face
    scorer uses it too)."""

    def measure() -> float:
        h, w = image.rgb.shape[:2]
        if max(h, w) > 2 * COLOUR_VIEW_EDGE:
            view = colour_view(image)
        else:  # half the photo, as for larger ones half their 512-px view
            view = cv2.resize(image.rgb, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
        rgb = view.astype(np.float32)
        r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
        sigmas = []
        for channel in (r - g, 0.5 * (r + g) - b):
            response = np.abs(cv2.filter2D(channel, cv2.CV_32F, _NOISE_KERNEL))[1:-1, 1:-1]
            # the median of |operator| over Gaussian noise is 0.6745 x 6 sigma: scale back to sigma
            sigmas.append(_median(response) / (0.6745 * 6.0))
        return float(np.mean(sigmas))

    return image.shared("chroma_noise", measure)


def _median(values: np.ndarray) -> float:
    """np.median of ``values``, to the bit: one partition and the largest value below the middle
    instead of np.median's partition at two places (0.15 ms instead of 0.76 on a 256-px view)."""
    flat = np.ravel(values)
    k = flat.size // 2
    part = np.partition(flat, k)
    if flat.size % 2:
        return float(part[k])
    return float((part[:k].max() + part[k]) / 2)  # in the array's own precision, as np.median


def colour_view(image: "Decoded") -> np.ndarray:  # noqa: F821
    """The 256-px RGB view of noise and colourfulness, shared with every scorer that asks
    for ``image.resized(256)``: the decode's exact k x k box average where one is within
    5 % of 256 px (a 1000-px decode: 4 x 4, 250 px; see decode.box_factor), else area
    resampled from the decode in one step.

    One step, not the decoded image's usual halvings then a fractional step: chroma noise
    depends on the filter that averages it, and a box average or this step measures what
    the 512-px view halved again measured (on 30 photos, clean and noisy: the same noise
    quality, sigma within 0.12; the halving path would read the noisy ones 17 % lower).
    The box average costs 0.3 ms on a 1000x750 decode, the fractional step 4.2."""
    from ...imaging.decode import box_factor

    h, w = image.rgb.shape[:2]
    if max(h, w) <= COLOUR_VIEW_EDGE or box_factor(max(h, w), COLOUR_VIEW_EDGE):
        return image.resized(COLOUR_VIEW_EDGE)

    def make() -> np.ndarray:
        scale = COLOUR_VIEW_EDGE / max(h, w)
        view = cv2.resize(image.rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        view.setflags(write=False)
        return view

    return image.shared(("rgb", COLOUR_VIEW_EDGE), make)


def noise_quality(sigma: float) -> float:
    """The face scorer's 0..1 discount for a chroma noise sigma: 1 up to 1.5, 0.5 at 3, 0.1 at 6."""
    excess = max(0.0, sigma - Noise.CLEAN) / Noise.SCALE
    return 1.0 / (1.0 + excess * excess)


class Colourfulness:
    """Hasler and Suesstrunk's colourfulness metric M on a 64-px view made by a
    5x5 median, area averaging and a Gaussian (sigma 1.5 px): colour that spans
    the scene counts, sensor noise (colourful pixel by pixel) does not. On that
    view a grey photo with heavy colour noise measures M ~ 2; M ~ 15 is slightly,
    33 moderately, 59 quite and 82 highly colourful.
    normalised = (M - 3) / 87, clipped to 0..1."""

    # technical, not aesthetic: it measures the photo's colour statistics, and between
    # near-identical frames of a burst its small content-driven changes must not
    # outweigh sharpness. The aesthetic group belongs to the learned models.
    name, task, version = "colourfulness", "technical", VERSION
    GREY, FULL = 3.0, 90.0

    def score(self, image: "Decoded") -> list[Score]:  # noqa: F821
        small = cv2.resize(cv2.medianBlur(colour_view(image), 5), None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA)
        rgb = cv2.GaussianBlur(small, (0, 0), 1.5).astype(np.float32)
        r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
        rg = r - g
        yb = 0.5 * (r + g) - b
        m = math.hypot(float(rg.std()), float(yb.std())) + 0.3 * math.hypot(float(rg.mean()), float(yb.mean()))
        value = (m - self.GREY) / (self.FULL - self.GREY)
        return [Score(self.name, self.task, m, min(1.0, max(0.0, value)), self.version)]
