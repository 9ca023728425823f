"""Phone -> viseme targets: what each ARPAbet phone asks of the rig's controls.

JALI's split: `jaw` is how far the mandible opens for the phone (later scaled
by loudness), the other entries are lip shapes. Each phone also says how
strongly it holds its shape against its neighbours (dominance, after Cohen &
Massaro): lip dominance high for phones the lips must make (P/B/M, F/V,
rounding), low for tongue phones whose lips borrow from neighbouring vowels.

The hand table below gives the structure (which phones exist, their dominances) and
the fallback. The source of truth for the targets, spreads and timing is
core/data/visemes_fitted.json: measured on tracked real faces (rig-fitted control
trajectories of ../shared/assets/video, training speakers only) by
`python -m flame_lipsync.training.fit_visemes`.
"""
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

BILABIALS = frozenset({"M", "P", "B"})
LABIODENTALS = frozenset({"F", "V"})
VOWELS = frozenset({"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY",
                    "OW", "OY", "UH", "UW"})
SILENCE = "SIL"


@dataclass(frozen=True)
class Viseme:
    jaw: float                      # jaw_open target before loudness scaling
    lips: dict = field(default_factory=dict)   # other control targets
    jaw_dominance: float = 0.3
    lip_dominance: float = 0.3
    spread: float = 0.045           # s: how far its influence reaches (anticipation/carry-over)


def _v(jaw, lips=None, jd=1.0, ld=0.6, spread=0.060):
    return Viseme(jaw, lips or {}, jd, ld, spread)


def _c(jaw, lips=None, jd=0.3, ld=0.3, spread=0.040):
    return Viseme(jaw, lips or {}, jd, ld, spread)


# Diphthongs are split into two halves by the engine (see DIPHTHONGS).
HAND_VISEMES: dict[str, Viseme] = {
    "AA": _v(0.50, {"lower_lip_down": 0.25}),
    "AE": _v(0.42, {"stretch": 0.30, "upper_lip_raise": 0.25}),
    "AH": _v(0.38, {"lower_lip_down": 0.15}),
    "AO": _v(0.46, {"funnel": 0.35, "pucker": 0.15}),
    "EH": _v(0.34, {"stretch": 0.30, "upper_lip_raise": 0.15}),
    "ER": _v(0.18, {"funnel": 0.50, "pucker": 0.15}),
    "IH": _v(0.22, {"stretch": 0.35}),
    "IY": _v(0.12, {"stretch": 0.55, "smile": 0.20}),
    "UH": _v(0.20, {"pucker": 0.45, "funnel": 0.15}),
    "UW": _v(0.12, {"pucker": 0.85}, ld=0.9),
    "OW": _v(0.32, {"pucker": 0.50, "funnel": 0.35}, ld=0.8),
    # Lips must close: dominant on both jaw and lips.
    "M": _c(0.0, {"lips_close": 1.0, "lips_press": 0.35}, jd=0.4, ld=3.0, spread=0.030),
    "B": _c(0.0, {"lips_close": 1.0, "lips_press": 0.45}, jd=0.4, ld=3.0, spread=0.030),
    "P": _c(0.0, {"lips_close": 1.0, "lips_press": 0.55}, jd=0.4, ld=3.0, spread=0.030),
    "F": _c(0.06, {"lower_lip_tuck": 1.0, "upper_lip_raise": 0.15}, jd=0.8, ld=2.0),
    "V": _c(0.06, {"lower_lip_tuck": 0.9, "upper_lip_raise": 0.15}, jd=0.8, ld=2.0),
    "W": _c(0.08, {"pucker": 0.95}, jd=0.5, ld=1.5, spread=0.060),
    "SH": _c(0.10, {"funnel": 0.75, "pucker": 0.2}, jd=0.5, ld=1.2),
    "ZH": _c(0.10, {"funnel": 0.70, "pucker": 0.2}, jd=0.5, ld=1.2),
    "CH": _c(0.10, {"funnel": 0.70, "pucker": 0.2}, jd=0.5, ld=1.2),
    "JH": _c(0.10, {"funnel": 0.65, "pucker": 0.2}, jd=0.5, ld=1.2),
    "R": _c(0.12, {"pucker": 0.35, "funnel": 0.30}, ld=0.8),
    "S": _c(0.05, {"stretch": 0.30}, jd=0.6, ld=0.5),
    "Z": _c(0.05, {"stretch": 0.30}, jd=0.6, ld=0.5),
    "TH": _c(0.12, {"lower_lip_down": 0.25}, jd=0.5, ld=0.5),
    "DH": _c(0.12, {"lower_lip_down": 0.20}, jd=0.4, ld=0.4),
    "Y": _c(0.10, {"stretch": 0.40}, ld=0.5),
    "T": _c(0.12), "D": _c(0.12), "N": _c(0.12), "L": _c(0.16),
    "K": _c(0.16), "G": _c(0.16), "NG": _c(0.14),
    "HH": _c(0.20, jd=0.1, ld=0.1),
    # Silence: the mouth relaxes to rest; reaches further so pauses settle.
    SILENCE: Viseme(0.0, {}, jaw_dominance=0.8, lip_dominance=0.8, spread=0.080),
}

HAND_TIMING = {"anticipation": 1.4, "lead": 0.0, "min_hold": 0.050,
               "gain_floor": 0.6, "gain_ceiling": 1.25}

FITTED_FILE = Path(__file__).resolve().parent / "data" / "visemes_fitted.json"


def load_fitted(path: Path = FITTED_FILE):
    """(visemes, timing, the file's record) from the fitted file; the hand values where
    the file is absent or leaves a phone or a parameter out."""
    visemes, timing = dict(HAND_VISEMES), dict(HAND_TIMING)
    if not Path(path).is_file():
        return visemes, timing, None
    record = json.loads(Path(path).read_text())
    for label, fitted in record.get("visemes", {}).items():
        if label not in visemes:
            continue
        visemes[label] = replace(visemes[label], jaw=float(fitted["jaw"]),
                                 lips={k: float(v) for k, v in fitted["lips"].items()},
                                 spread=float(fitted.get("spread", visemes[label].spread)))
    timing.update({k: float(v) for k, v in record.get("timing", {}).items() if k in timing})
    return visemes, timing, record


VISEMES, TIMING, FITTED = load_fitted()

DIPHTHONGS = {"AW": ("AA", "UH"), "AY": ("AA", "IH"), "EY": ("EH", "IY"), "OY": ("AO", "IH")}

OPEN_VOWELS = frozenset({"AA", "AE", "AH", "AO", "AW", "AY", "EH"})


def viseme_for(label: str) -> Viseme:
    """Unknown labels (noise, fillers, out-of-set phones) behave as silence."""
    return VISEMES.get(label, VISEMES[SILENCE])
