"""Do the technical measures agree with what a photographer sees?

Real photos (scikit-image's bundled ones) are damaged step by step in seven
families, four levels each beyond the undamaged photo: Gaussian blur, motion
blur, JPEG quality, Gaussian noise, under-exposure, over-exposure (with the
highlights clipped) and haze (a bright veil: low contrast, lifted blacks).
Every version is saved as a JPEG (quality 92, or the family's own quality) and
scored through ``decode_image`` and the built-in scorers, as the daemon would.

Prints, per family, Kendall's tau between the damage level and each score, signed
so that 1.0 means "falls strictly as the damage grows" (the mean over the natural
photos, and the worst photo):

- chooser: the album's own judgement. The levels of a family are frames of
  one scene, as a burst is, and keepers never ranks a burst's
  frames by their stored composites: its chooser (daemon/album/choose.py, with
  the config's floors and tie-break margin, no comparator model offline)
  compares them on the score groups they share (its reason's ``compared_on``).
  For every pair of levels the bench hands the chooser the two frames as one
  cluster; +1 when it keeps the less damaged one, -1 when it keeps the other
  (the more damaged frame gets the lower id, so an exact tie counts against);
  the tau is the mean over the 10 pairs (Kendall's tau_a of its choices).
- composite: each frame's stored per-photo composite, the goal's figure too. It
  includes the portrait group wherever the face scorer finds a face: a face the
  detector is sure of counts even where damage keeps the face mesh from reading
  it (it then reads as the ruined portrait it is), so a face lost at one level
  and found at the next no longer lifts the damaged frame to its technical group.
- the technical group (the soft minimum of its measures: daemon/scoring/composite.py)
  and each measure; tech:all and tech:geo are two other ways the group could be
  formed (the plain mean of every built-in technical measure, colourfulness too;
  the geometric mean of the counted ones), printed for the choice.

Then which measure is fooled (rises with a defect it is not about, tau <= -0.2)
or misses its own defect (tau < 0.8); then bursts made as a newcomer would (one
good frame and damaged siblings, as in the demo set): per kind of sibling, the
good frame's median lead as the chooser compares the two (on the groups both
have), how often the chooser kept the sibling, and the median lead of the
per-photo composites beside it.

Excluded photos: colorwheel, logo, horse, checkerboard and binary_blobs are
drawn or generated (flat fills and mathematically hard edges: blur and noise
have no lens-made detail to destroy, so a "sharp" level means nothing);
clock is already motion-blurred by its camera (its undamaged level is damaged);
page and text are near-binary scans of print.

    .venv/bin/python bench/quality.py [--photos astronaut,coffee,...] [--bursts]
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import tempfile
import time
from pathlib import Path
from statistics import mean, median
from typing import Callable, NamedTuple

import cv2
import numpy as np
from PIL import Image
from scipy.stats import kendalltau

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from daemon.album.choose import Member, choose_cluster, compared_values  # noqa: E402
from daemon.config import load_config  # noqa: E402
from daemon.imaging.decode import decode_image  # noqa: E402
from daemon.imaging.demo import scene_image  # noqa: E402
from daemon.scoring.builtin import BUILTIN, builtin_scorers  # noqa: E402
from daemon.scoring.composite import composite, group_scores  # noqa: E402

sys.path.insert(0, str(ROOT / "tests"))
from fixtures_photos import exposed  # noqa: E402

#: the natural photos the goal (composite tau >= 0.8 in every family) is measured on
NATURAL = ("astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "moon")
#: real but not everyday photos (microscopy, astronomy, textures): printed, not in the goal
OTHER_REAL = ("immunohistochemistry", "hubble_deep_field", "retina", "grass", "gravel", "brick")
EXCLUDED = {
    "colorwheel": "generated colour gradient: nothing a lens drew, blur barely changes it",
    "logo": "drawn artwork with flat fills",
    "horse": "binary silhouette",
    "checkerboard": "generated pattern",
    "binary_blobs": "generated pattern",
    "clock": "already motion-blurred by its camera: its undamaged level is damaged",
    "page": "near-binary scan of print",
    "text": "near-binary scan of print",
}
QUALITY = 92  # how every version is saved (a camera's usual JPEG), except the JPEG family's own levels


def _scale(img: np.ndarray) -> float:
    """Damage sizes are given for a 640-px photo and scaled to this one."""
    return max(img.shape[:2]) / 640.0


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(img, (0, 0), sigma * _scale(img))


def motion_blur(img: np.ndarray, length: float) -> np.ndarray:
    """A straight camera shake of ``length`` px at 20 degrees."""
    n = max(3, int(round(length * _scale(img))) | 1)
    kernel = np.zeros((n, n), np.float32)
    c = n // 2
    dx, dy = math.cos(math.radians(20)) * c, math.sin(math.radians(20)) * c
    cv2.line(kernel, (int(round(c - dx)), int(round(c - dy))), (int(round(c + dx)), int(round(c + dy))), 1.0, 1, cv2.LINE_AA)
    return cv2.filter2D(img, -1, kernel / kernel.sum(), borderType=cv2.BORDER_REFLECT)


def gaussian_noise(img: np.ndarray, sigma: float, seed: int = 11) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(img.astype(np.float32) + rng.normal(0.0, sigma, img.shape), 0, 255).astype(np.uint8)


def exposure(img: np.ndarray, ev: float) -> np.ndarray:
    """``ev`` stops more or less light, in linear light; what goes past white clips (the
    change the scorer tests make too)."""
    return np.asarray(exposed(Image.fromarray(img), ev))


def haze(img: np.ndarray, veil: float) -> np.ndarray:
    """Airlight: a bright grey veil over a fraction ``veil`` of the light."""
    return np.clip(img.astype(np.float32) * (1 - veil) + 205.0 * veil + 0.5, 0, 255).astype(np.uint8)


# family -> (the damage at levels 0..4, how to apply it); level 0 is the undamaged photo
FAMILIES: dict[str, tuple[tuple[float, ...], Callable[[np.ndarray, float], np.ndarray] | None]] = {
    "gaussian blur": ((0, 1.0, 2.0, 3.5, 6.0), gaussian_blur),
    "motion blur": ((0, 7, 13, 21, 35), motion_blur),
    "jpeg quality": ((QUALITY, 40, 20, 10, 4), None),
    "gaussian noise": ((0, 5, 10, 20, 35), gaussian_noise),
    "under-exposure": ((0, -0.7, -1.4, -2.1, -3.0), exposure),
    "over-exposure": ((0, 0.7, 1.4, 2.1, 3.0), exposure),
    "haze": ((0, 0.25, 0.45, 0.65, 0.8), haze),
}
#: the measure meant for each family's defect
MEANT = {"gaussian blur": "sharpness", "motion blur": "sharpness", "jpeg quality": "compression",
         "gaussian noise": "noise", "under-exposure": "exposure", "over-exposure": "exposure", "haze": "contrast"}
FOOLED = -0.2  # a measure whose tau is this low rises with the damage...
RISE = 0.03  # ...when its most damaged level also scores this much more than the undamaged one


class Version:
    """One scored version of a photo: every measure's normalised value (and the technical
    group, the other ways to form it, the composite), and the photo as the album's chooser
    sees it."""

    def __init__(self, values: dict[str, float], groups: dict[str, float], weights: dict[str, float]) -> None:
        self.values = values
        self.groups = groups
        self.weights = weights

    def member(self, image_id: int) -> Member:
        result = composite(self.groups, self.weights)
        return Member(image_id, f"/bench/{image_id}.jpg", float(image_id), result.value, self.groups, result.coverage)


class Scoring:
    """The default config's built-in scorers and their composite, on files as the daemon
    reads them; built-in technical measures the config leaves out are measured too (and
    printed) but do not count."""

    def __init__(self, folder: Path) -> None:
        self.config = load_config(None, check_folders=False)
        self.scorers = builtin_scorers(self.config)
        self.extra = [make() for name, make in BUILTIN.items() if name not in self.config.scorers and make().task == "technical"]
        self.weights = self.config.weights.as_dict()
        self.folder = folder
        self.count = 0

    def measure(self, pixels: np.ndarray, quality: int = QUALITY) -> Version:
        path = self.folder / f"v{self.count}.jpg"
        self.count += 1
        Image.fromarray(pixels).save(path, "JPEG", quality=quality)
        decoded = decode_image(path, size=self.config.decode_size)
        scores = [s for sc in self.scorers for s in sc.score(decoded)]
        groups = group_scores((s.task, s.normalised) for s in scores)
        out = {s.name: s.normalised for s in scores if s.task == "technical"}
        out.update({s.name: s.normalised for sc in self.extra for s in sc.score(decoded)})
        out["technical"] = groups.get("technical", float("nan"))
        # other ways the technical group could be formed, for the record: every built-in
        # technical measure (colourfulness too) averaged, and the geometric mean
        measures = [v for k, v in out.items() if k != "technical"]
        out["tech:all"] = mean(measures)
        out["tech:geo"] = math.exp(mean(math.log(max(v, 0.02)) for k, v in out.items() if k in groups_members(scores)))
        value = composite(groups, self.weights).value
        out["composite"] = float("nan") if value is None else value
        return Version(out, groups, self.weights)

    def prefers(self, better: Version, worse: Version) -> int:
        """The album's own choice between two frames of one scene, as a cluster of two: +1 when
        it picks ``better``, -1 when it picks ``worse``, 0 when a floor vetoes both. ``worse``
        gets the lower id, so an exact tie (the chooser keeps the photo found first) counts
        against the measures."""
        album = self.config.album
        pick = choose_cluster(0, [worse.member(1), better.member(2)], floors=album.floors,
                              tiebreak_margin=album.tiebreak_margin, weights=self.weights)
        if not pick.choices:
            return 0
        return 1 if pick.choices[0].image_id == 2 else -1

    def margin(self, better: Version, worse: Version) -> float:
        """``better``'s lead over ``worse`` as the chooser compares them (on the groups both have)."""
        values, _ = compared_values([better.member(1), worse.member(2)], self.weights)
        if values[1] is None or values[2] is None:
            return float("nan")
        return values[1] - values[2]


def groups_members(scores: list) -> set[str]:
    return {s.name for s in scores if s.task == "technical"}


def family_levels(scoring: Scoring, pixels: np.ndarray, family: str) -> list[Version]:
    levels, apply = FAMILIES[family]
    if apply is None:
        return [scoring.measure(pixels, int(q)) for q in levels]
    return [scoring.measure(pixels if i == 0 else apply(pixels, d)) for i, d in enumerate(levels)]


def falls(values: list[float]) -> float:
    """Kendall's tau_b between level and -value: 1.0 when the value falls strictly with the damage."""
    if any(math.isnan(v) for v in values):
        return float("nan")
    if len(set(values)) == 1:
        return 0.0
    tau = kendalltau(range(len(values)), values).statistic
    return float(-tau)


def chooser_tau(scoring: Scoring, rows: list[Version]) -> float:
    """Kendall's tau of the album's choices: over every pair of levels, +1 when the chooser
    keeps the less damaged frame, -1 when it keeps the other (tau_a of its pairwise choices;
    1.0 when it always keeps the less damaged one)."""
    pairs = list(itertools.combinations(range(len(rows)), 2))
    return sum(scoring.prefers(rows[a], rows[b]) for a, b in pairs) / len(pairs)


def photo_pixels(name: str) -> np.ndarray:
    return np.asarray(scene_image(name))


def run_families(scoring: Scoring, photos: tuple[str, ...]) -> dict[str, dict[str, dict[str, float]]]:
    """family -> photo -> measure -> tau; and "rise:<measure>" -> the most damaged level's
    value minus the undamaged one's."""
    out: dict[str, dict[str, dict[str, float]]] = {f: {} for f in FAMILIES}
    for name in photos:
        pixels = photo_pixels(name)
        for family in FAMILIES:
            rows = family_levels(scoring, pixels, family)
            first = rows[0].values
            out[family][name] = {"chooser": chooser_tau(scoring, rows), "rise:chooser": float("nan")}
            out[family][name].update({m: falls([r.values.get(m, float("nan")) for r in rows]) for m in first})
            out[family][name].update({f"rise:{m}": rows[-1].values.get(m, float("nan")) - first[m] for m in first})
    return out


def _fmt(v: float) -> str:
    return "   -  " if math.isnan(v) else f"{v:+6.2f}"


def print_table(taus: dict[str, dict[str, dict[str, float]]], photos: tuple[str, ...], title: str) -> dict[str, dict[str, float]]:
    measures = [m for m in next(iter(next(iter(taus.values())).values())) if not m.startswith("rise:")]
    first = ("chooser", "composite", "technical", "tech:all", "tech:geo")
    measures = [m for m in first if m in measures] + [m for m in measures if m not in first]
    print(f"\n{title}: Kendall tau of level vs score, mean over {len(photos)} photos ({', '.join(photos)})")
    print(f"{'family':<16}{'worst':>8} " + "".join(f"{m[:11]:>12}" for m in measures))
    means: dict[str, dict[str, float]] = {}
    for family, per_photo in taus.items():
        row = {m: mean(per_photo[p][m] for p in photos if m in per_photo[p]) for m in measures}
        row.update({f"rise:{m}": mean(per_photo[p][f"rise:{m}"] for p in photos) for m in measures})
        worst_photo = min(photos, key=lambda p: per_photo[p]["chooser"])
        worst_composite = min(photos, key=lambda p: per_photo[p]["composite"])
        means[family] = row
        print(f"{family:<16}{per_photo[worst_photo]['chooser']:+8.2f} " + "".join(f"{_fmt(row[m]):>12}" for m in measures)
              + f"   (worst: {worst_photo}; composite's: {worst_composite} {per_photo[worst_composite]['composite']:+.2f})")
    return means


def print_fooled(means: dict[str, dict[str, float]]) -> None:
    print("\nwhich measure is fooled by which family (X: rises with a defect it is not about: tau <= -0.2 and, on"
          " average, the most damaged level scores 0.03 or more above the undamaged one; miss: its own defect's"
          " tau < 0.8; .: fine)")
    measures = [m for m in next(iter(means.values()))
                if m not in ("chooser", "composite", "technical") and not m.startswith(("tech:", "rise:"))]
    print(f"{'family':<16}" + "".join(f"{m[:11]:>12}" for m in measures))
    for family, row in means.items():
        cells = []
        for m in measures:
            if MEANT[family] == m:
                cells.append("miss" if row[m] < 0.8 else "ok (own)")
            else:
                cells.append("X" if row[m] <= FOOLED and row[f"rise:{m}"] >= RISE else ".")
        print(f"{family:<16}" + "".join(f"{c:>12}" for c in cells))
    missing = sorted({m for m in MEANT.values()} - set(measures))
    if missing:
        print(f"(no measure named {', '.join(missing)} among the built-in scorers)")


# bursts: the demo set's kinds of sibling, plus the three this bench adds
BURST_SIBLINGS: dict[str, Callable[[np.ndarray], np.ndarray] | int] = {
    "blurred": lambda px: gaussian_blur(px, 4.0),
    "motion": lambda px: motion_blur(px, 15),
    "noisy": lambda px: gaussian_noise(px, 22.0, seed=3),
    "dark": lambda px: exposure(px, -1.5),
    "bright": lambda px: exposure(px, 1.5),
    "compressed": 8,  # JPEG quality
    "hazy": lambda px: haze(px, 0.5),
}


def burst_margins(scoring: Scoring, photos: tuple[str, ...]) -> None:
    chosen: dict[str, list[float]] = {k: [] for k in BURST_SIBLINGS}
    stored: dict[str, list[float]] = {k: [] for k in BURST_SIBLINGS}
    lost: dict[str, list[str]] = {k: [] for k in BURST_SIBLINGS}
    for name in photos:
        pixels = photo_pixels(name)
        good = scoring.measure(pixels)
        for kind, make in BURST_SIBLINGS.items():
            sibling = scoring.measure(pixels, make) if isinstance(make, int) else scoring.measure(make(pixels))
            chosen[kind].append(scoring.margin(good, sibling))
            stored[kind].append(good.values["composite"] - sibling.values["composite"])
            if scoring.prefers(good, sibling) <= 0:
                lost[kind].append(name)
    print(f"\nbursts on {len(photos)} photos: the good frame's lead over its sibling as the album compares them (on the"
          " groups both have; median, min; lost = the album kept the sibling), and the per-photo composites' (median, min)")
    for kind, values in chosen.items():
        print(f"  {kind:<11} median {median(values):+.3f}   min {min(values):+.3f}   lost {len(lost[kind])}/{len(values)}"
              + (f" ({', '.join(lost[kind])})" if lost[kind] else "").ljust(20)
              + f"   composites: median {median(stored[kind]):+.3f}   min {min(stored[kind]):+.3f}")
    sharp = chosen["blurred"] + chosen["motion"] + chosen["noisy"]
    sharp_stored = stored["blurred"] + stored["motion"] + stored["noisy"]
    print(f"  median margin of the sharp frame over its noisy or blurred siblings: {median(sharp):+.3f}"
          f" as the album compares them, {median(sharp_stored):+.3f} on the per-photo composites")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", help="comma-separated scikit-image photos instead of the natural set")
    parser.add_argument("--other", action="store_true", help="also print the table for the other real images")
    args = parser.parse_args()
    photos = tuple(args.photos.split(",")) if args.photos else NATURAL
    for name in photos:
        if name in EXCLUDED:
            parser.error(f"{name} is excluded: {EXCLUDED[name]}")
    print("excluded: " + "; ".join(f"{k} ({v})" for k, v in EXCLUDED.items()))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="keepers-quality-") as tmp:
        scoring = Scoring(Path(tmp))
        print(f"scorers: {', '.join(s.name for s in scoring.scorers)}; weights {scoring.weights}")
        means = print_table(run_families(scoring, photos), photos, "natural photos")
        print_fooled(means)
        if args.other:
            print_table(run_families(scoring, OTHER_REAL), OTHER_REAL, "other real images (not in the goal)")
        burst_margins(scoring, photos)
        worst = min(means, key=lambda f: means[f]["chooser"])
        stored = min(means, key=lambda f: means[f]["composite"])
        technical = min(means, key=lambda f: means[f]["technical"])
        print(f"\nthe album's choices (chooser tau), worst family (mean over the natural photos): {means[worst]['chooser']:+.2f}"
              f" ({worst}; goal >= 0.80)")
        print(f"per-photo composite tau, worst family: {means[stored]['composite']:+.2f} ({stored}; goal >= 0.80)")
        print(f"technical group tau, worst family: {means[technical]['technical']:+.2f} ({technical})")
        print(f"{scoring.count} versions scored in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
