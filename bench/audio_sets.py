"""The sound folders of the audio quality benchmark (``bench/quality.py``), each split by file
into ``train/`` and ``held/`` (3/4 and 1/4, fixed seed):

- ``sonic_pi``: ``../shared/data/audio/sonic_pi_cc0`` as it is (165 real samples, linked);
- ``oneshot``: its one-shots (bass drums, snares, drums, electronic hits, percussion, tabla: 98
  files) in three velocity layers, 0, -15 and -30 dB, the softer ones duller, as real kits
  have them; split by *source* file so the layers of one hit stay on one side;
- ``kit`` (not in the default list): the bass drums and snares alone, in the same three layers:
  39 training files, 16 s, so the auto preset picks *tiny*, the regime of a small drum kit;
- ``onset``: 48 synthetic drum-like one-shots (kicks, snares, hats, toms), 0.15-0.9 s each;
- ``continuous``: 24 synthetic held tones with vibrato, coloured noise and speech-like formant
  sweeps (a pulse train through three moving resonators), 2-4 s each;
- the seven real kits of ``../shared/data/audio/drumkits`` (``KITS``), each in two splits:
  ``<kit>-file`` (files drawn at random, so the velocity layers and takes of one instrument fall
  on both sides: new velocities of known instruments) and ``<kit>-instrument`` (instruments
  drawn at random, all the files of one on one side: new instruments). About 1/4 held out
  (of the files, or of the instruments), fixed seed. The instrument of a file comes from its
  name by the kit's rule in ``KITS`` (``instrument_of``); ``python bench/audio_sets.py`` prints
  every kit's groups and both splits so a reader can check them.

Nothing from the shared folder is copied into the repository: the real sets are built in a
temporary work folder.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from smalltrain.tasks.audio.data.synth import drum_hit

REAL_SETS = ("sonic_pi", "oneshot", "kit")

SR = 48000
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared" / "data"  # the shared real data, as the other benches find it
SONIC_PI = SHARED / "audio" / "sonic_pi_cc0"
DRUMKITS = SHARED / "audio" / "drumkits"
SEED = 0

# --- synthetic material -------------------------------------------------------------------------


def _hit(rng: np.random.Generator) -> np.ndarray:
    """One drum-like one-shot starting at sample 0 (the demo's material too)."""
    return drum_hit(rng, SR)


def _formant_sweep(rng: np.random.Generator, n_out: int) -> np.ndarray:
    """Speech-like sound: a pulse train through three moving formant resonators.

    Made at 16 kHz (the per-sample resonator loop is Python) and resampled to 48 kHz.
    """
    sr = 16000
    n = n_out // 3
    t = np.arange(n) / sr
    f0 = rng.uniform(100, 220) * (1 + 0.05 * np.sin(2 * np.pi * rng.uniform(0.3, 1.0) * t))
    pulses = np.diff(np.floor(np.cumsum(f0) / sr), prepend=0.0)
    out = np.zeros(n)
    for base, spread, bw in ((500, 300, 80), (1500, 700, 120), (2500, 400, 160)):
        fc = base + spread * np.sin(2 * np.pi * rng.uniform(1.5, 4.0) * t + rng.uniform(0, 6))
        r = np.exp(-np.pi * bw / sr)
        a1, a2 = -2 * r * np.cos(2 * np.pi * fc / sr), r * r
        y1 = y2 = 0.0
        y = np.empty(n)
        for i in range(n):  # a two-pole resonator with a time-varying centre
            y0 = pulses[i] - a1[i] * y1 - a2 * y2
            y[i], y2, y1 = y0, y1, y0
        out += y / (np.abs(y).max() + 1e-9)
    syllables = 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(3, 5) * t) ** 2
    up = np.asarray(soxr.resample(out * syllables, sr, SR), dtype=np.float64)
    return np.pad(up, (0, max(0, n_out - up.shape[0])))[:n_out]


def _sustained(rng: np.random.Generator) -> np.ndarray:
    """A held tone, coloured noise or a formant sweep, 2-4 s, with soft edges."""
    kind = rng.choice(["tone", "noise", "speech"])
    n = int(rng.uniform(2.0, 4.0) * SR)
    t = np.arange(n) / SR
    if kind == "tone":
        f = rng.uniform(110, 660) * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))
        phase = 2 * np.pi * np.cumsum(f) / SR
        wave = sum(np.sin(k * phase) / k for k in range(1, 6))
    elif kind == "noise":
        spec = np.fft.rfft(rng.normal(size=n))
        freqs = np.fft.rfftfreq(n, 1 / SR)
        centre = rng.uniform(300, 6000)
        spec *= 1 / (1 + (freqs / rng.uniform(200, 2000))) + np.exp(
            -(((freqs - centre) / 500) ** 2)
        )
        wave = np.fft.irfft(spec, n)
    else:
        wave = _formant_sweep(rng, n)
    edges = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.05)
    wave = np.asarray(wave) * edges
    return (0.5 * wave / (np.abs(wave).max() + 1e-9)).astype(np.float32)


# --- sets ---------------------------------------------------------------------------------------


def _split_names(names: list[str], seed: int) -> tuple[list[str], list[str]]:
    order = np.random.default_rng(seed).permutation(len(names))
    n_held = max(1, round(len(names) / 4))
    held = {names[i] for i in order[:n_held]}
    return [n for n in names if n not in held], [n for n in names if n in held]


def _synthetic_set(root: Path, make: Callable[[np.random.Generator], np.ndarray], n: int) -> None:
    rng = np.random.default_rng(SEED)
    names = [f"s{i:03d}.wav" for i in range(n)]
    train_names, _ = _split_names(names, SEED)
    for name in names:
        sub = "train" if name in train_names else "held"
        (root / sub).mkdir(parents=True, exist_ok=True)
        sf.write(root / sub / name, make(rng), SR, subtype="FLOAT")


def _sonic_pi_set(root: Path) -> None:
    names = sorted(p.name for p in SONIC_PI.glob("*.flac"))
    train_names, _ = _split_names(names, SEED)
    for name in names:
        sub = "train" if name in train_names else "held"
        (root / sub).mkdir(parents=True, exist_ok=True)
        (root / sub / name).symlink_to(SONIC_PI / name)  # nothing is copied


ONESHOT_PREFIXES = ("bd_", "sn_", "drum_", "elec_", "perc_", "tabla_")
# velocity layers: (name, gain dB, share of the one-pole low-pass mixed in: softer is darker)
VELOCITY_LAYERS = (("hard", 0.0, 0.0), ("medium", -15.0, 0.35), ("soft", -30.0, 0.7))


def _darken(wave: np.ndarray, sr: int, amount: float, cutoff_hz: float = 2500.0) -> np.ndarray:
    """Mix ``amount`` of a one-pole low-pass into ``wave`` (softer hits are duller)."""
    if amount <= 0:
        return wave
    from scipy.signal import lfilter  # scipy comes with librosa (the bench extra)

    a = math.exp(-2 * math.pi * cutoff_hz / sr)
    low = lfilter([1 - a], [1, -a], wave, axis=0)
    return (1 - amount) * wave + amount * low


def _oneshot_set(root: Path, prefixes: tuple[str, ...] = ONESHOT_PREFIXES) -> None:
    """The sonic_pi one-shots (bass drums, snares, drums, electronic hits, percussion, tabla) in
    three velocity layers 0, -15 and -30 dB, the softer ones darker, split by *source* file so
    the layers of one hit never sit on both sides. Files keep their native 44.1 kHz and
    channels (the loader resamples and mixes down as for any user folder)."""
    names = sorted(p.name for p in SONIC_PI.glob("*.flac") if p.name.startswith(prefixes))
    train_names, _ = _split_names(names, SEED)
    for name in names:
        sub = "train" if name in train_names else "held"
        (root / sub).mkdir(parents=True, exist_ok=True)
        wave, sr = sf.read(SONIC_PI / name, dtype="float64", always_2d=True)
        stem = name.removesuffix(".flac")
        for layer, gain_db, dark in VELOCITY_LAYERS:
            out = _darken(wave, sr, dark) * 10 ** (gain_db / 20)
            sf.write(root / sub / f"{stem}_{layer}.wav", out, sr, subtype="FLOAT")


# --- real drum kits ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kit:
    """One folder of ``DRUMKITS`` and how its file names give the instrument.

    From the name (no extension): a trailing take number goes, with a one-letter variant after
    it (``_01``, ``_03_B``, `` 2``); the rest is lower-cased and cut into words at ``-``, ``_``
    and spaces; with ``glued_takes``, each word also loses digits at its end (``crash1``,
    ``normal3``, ``shot2``: kits that glue the take number to a word); words in ``drop``
    (velocity-layer, microphone and "shot" words) and empty ones go; the first ``keep`` words
    left name the instrument (0: all of them)."""

    folder: str
    drop: frozenset[str] = frozenset()
    keep: int = 0
    glued_takes: bool = False
    rule: str = ""  # the rule in words, for the printout and bench/README.md


VELOCITY = frozenset({"softest", "soft", "med", "hard", "hardest"})
KITS: dict[str, Kit] = {
    "pearl": Kit(
        "The_Black_Pearl_10",
        VELOCITY,
        rule="drop the velocity layer (-Softest/-Soft/-Med/-Hard/-Hardest): 21 instruments "
        "x 5 layers (each articulation its own, as Hydrogen names them: PearlSnare and "
        "PearlSnareRimshot, six hat states; PearlTom1 and PearlTom2 two toms), and HandClap "
        "alone",
    ),
    "millo": Kit(
        "Millo_MultiLayered2",
        rule="drop the layer number (bd_01..bd_05 -> bd): 12 instruments of 2-5 layers "
        "(jsnare and rsnare two snares)",
    ),
    "colombo": Kit(
        "ColomboAcousticDrumkit",
        frozenset({"4mics", "2mics", "br", "stereo", "mic", "normal", "soft", "shot"}),
        glued_takes=True,
        rule="drop take numbers (also glued to a word: crash1, normal3, shot2), the microphone "
        "words (4mics, 2mics, br, stereo, mic), the level words (normal, soft) and 'shot'; "
        "the articulation is the instrument, as in pearl (crash16i crash / ride / ride cup; "
        "hihat closed / open / semi open; snare opaque / snare opaque rimshot)",
    ),
    "gimme": Kit(
        "Gimme_A_Hand_10",
        VELOCITY,
        rule="drop the velocity layer, as pearl: 13 instruments x 5 layers",
    ),
    "afrique": Kit(
        "circAfrique_v4",
        keep=1,
        rule="the first word, the drum (Djembe1..Djembe5, Dununba1, Kenkeni1, Sangban1): its "
        "strokes (bass, slap, tone; bell, head, hit, mute) are its variants; 8 instruments "
        "of 3-4 strokes (the kit has no velocity layers, so by file tests new strokes of "
        "known drums)",
    ),
    "empire": Kit(
        "ElectricEmpireKit",
        frozenset({"ee"}),
        rule="drop the EE_ prefix and the take number (Kick_Hard_1, Kick_Hard_2 -> kick hard; "
        "Kick_Hard and Kick_Lite are two different kicks, Clap and Clap_Hard two claps): "
        "24 instruments of 1-3 takes",
    ),
    "hardelectro": Kit(
        "HardElectro1",
        rule="drop the take number and a one-letter variant after it (HardHse_K_03_B -> "
        "hardhse k): 13 instruments of 1-2 takes (emptySample is silent: the loader skips it)",
    ),
}
KIT_SPLITS = ("file", "instrument")
KIT_SETS = tuple(f"{kit}-{split}" for kit in KITS for split in KIT_SPLITS)
KIT_SUFFIXES = (".wav", ".flac")


def instrument_of(kit: Kit, filename: str) -> str:
    """The instrument ``filename`` (a file of ``kit``) belongs to, by the kit's naming rule."""
    stem = re.sub(r"[-_\s]+\d+(?:[-_\s]+[A-Za-z])?$", "", Path(filename).stem)
    words = re.split(r"[-_\s]+", stem.lower())
    if kit.glued_takes:
        words = [re.sub(r"\d+$", "", w) for w in words]
    words = [w for w in words if w and w not in kit.drop]
    return " ".join(words[: kit.keep] if kit.keep else words)


def kit_files(kit: Kit) -> list[str]:
    """The kit's audio file names, sorted (every one; the loader skips a silent one itself)."""
    folder = DRUMKITS / kit.folder
    return sorted(p.name for p in folder.iterdir() if p.suffix.lower() in KIT_SUFFIXES)


def kit_groups(kit: Kit) -> dict[str, list[str]]:
    """Instrument -> its files, both sorted."""
    groups: dict[str, list[str]] = {}
    for name in kit_files(kit):
        groups.setdefault(instrument_of(kit, name), []).append(name)
    return dict(sorted(groups.items()))


def kit_split(set_name: str) -> tuple[list[str], list[str]]:
    """(train, held) file names of a kit set such as ``pearl-file`` or ``pearl-instrument``."""
    kit_name, _, split = set_name.rpartition("-")
    if kit_name not in KITS or split not in KIT_SPLITS:
        raise ValueError(f"unknown kit set {set_name!r}; known: {', '.join(KIT_SETS)}")
    kit = KITS[kit_name]
    if split == "file":
        return _split_names(kit_files(kit), SEED)
    groups = kit_groups(kit)
    train_groups, held_groups = _split_names(list(groups), SEED)
    return (
        sorted(f for g in train_groups for f in groups[g]),
        sorted(f for g in held_groups for f in groups[g]),
    )


def _kit_set(root: Path, set_name: str) -> None:
    kit = KITS[set_name.rpartition("-")[0]]
    for sub, names in zip(("train", "held"), kit_split(set_name), strict=True):
        (root / sub).mkdir(parents=True, exist_ok=True)
        for name in names:
            (root / sub / name).symlink_to(DRUMKITS / kit.folder / name)  # nothing is copied


def source_of(name: str) -> Path | None:
    """The shared folder a set needs (None for a synthetic set)."""
    if name in KIT_SETS:
        return DRUMKITS / KITS[name.rpartition("-")[0]].folder
    return SONIC_PI if name in REAL_SETS else None


def describe_kits() -> str:
    """Every kit's rule, instrument groups and both splits, as text for a reader to check."""
    lines = []
    for kit_name, kit in KITS.items():
        groups = kit_groups(kit)
        lines.append(f"{kit_name} ({kit.folder}): {len(kit_files(kit))} files, "
                     f"{len(groups)} instruments; rule: {kit.rule}")  # fmt: skip
        held = {split: set(kit_split(f"{kit_name}-{split}")[1]) for split in KIT_SPLITS}
        for instrument, files in groups.items():
            marks = ", ".join(
                f + "".join(f" [{s} held]" for s in KIT_SPLITS if f in held[s]) for f in files
            )
            lines.append(f"  {instrument}: {marks}")
        for split in KIT_SPLITS:
            train, test = kit_split(f"{kit_name}-{split}")
            lines.append(f"  {kit_name}-{split}: {len(train)} train / {len(test)} held files")
    return "\n".join(lines)


def build_set(name: str, root: Path) -> Path:
    """Write (or link) the set's train/ and held/ folders under ``root / name``."""
    target = root / name
    if name in KIT_SETS:
        _kit_set(target, name)
    elif name == "sonic_pi":
        _sonic_pi_set(target)
    elif name == "oneshot":
        _oneshot_set(target)
    elif name == "kit":
        _oneshot_set(target, ("bd_", "sn_"))
    elif name == "onset":
        _synthetic_set(target, _hit, 48)
    elif name == "continuous":
        _synthetic_set(target, _sustained, 24)
    else:
        raise ValueError(f"unknown set {name!r}")
    return target


if __name__ == "__main__":
    print(describe_kits())
