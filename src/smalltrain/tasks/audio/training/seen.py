"""What the model sees: a few augmented training chunks as WAVs beside their originals.

Written once, at the start of a fresh run, into ``<run>/seen/`` (layout: ``engine.seen``). Each
chunk is epoch 0's augmented copy of a training chunk, drawn exactly as the data loader draws
it (``AudioTrainingDataset.item_with_draw``), so the WAV is what the model trains on. Both the
original and the augmented mel go through the previews' inversion (``preview.render_mels``),
so the pair differs only by the augmentation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from smalltrain.engine.seen import SEEN_DIR, write_seen
from smalltrain.tasks.audio.data.dataset import AudioTrainingDataset
from smalltrain.tasks.audio.data.spectrogram import AudioSpectrogram
from smalltrain.tasks.audio.use.preview import render_mels, write_wav

__all__ = ["SEEN_COUNT", "pick_chunks", "write_seen_chunks"]

#: How many chunk pairs a run writes: enough to hear the spread, cheap to invert.
SEEN_COUNT = 3


def pick_chunks(ds: AudioTrainingDataset, count: int) -> list[int]:
    """Up to ``count`` chunk indices, from different files first, in dataset order."""
    firsts: dict[int, int] = {}
    for i, (fi, _) in enumerate(ds.chunk_index):
        firsts.setdefault(fi, i)
    picked = list(firsts.values())[:count]
    rest = [i for i in range(ds.n_chunks) if i not in picked]
    return sorted(picked + rest[: count - len(picked)])


def write_seen_chunks(
    ds: AudioTrainingDataset,
    spectrogram: AudioSpectrogram,
    run_dir: Path,
    count: int = SEEN_COUNT,
) -> Path:
    """Write ``count`` (original, augmented) WAV pairs and ``seen.json``; return the JSON's path.

    Without augmentation (off, or one copy per chunk) only ``seen.json`` is written, saying so.
    """
    out = Path(run_dir) / SEEN_DIR
    out.mkdir(parents=True, exist_ok=True)
    sr = spectrogram.config.sample_rate
    aug = ds.augmentation
    manifest: dict[str, Any] = {
        "task": "audio",
        "augmentation": aug.config.to_dict() if aug is not None else None,
        "items": [],
    }
    if aug is None or ds.expansion < 2:
        manifest["note"] = "augmentation is off: the model sees the chunks as they are"
        return write_seen(run_dir, manifest)
    chunks = pick_chunks(ds, count)
    originals = torch.stack([ds.mels[c] for c in chunks]).unsqueeze(1)
    seen = [ds.item_with_draw(ds.n_chunks + c) for c in chunks]  # epoch 0, copy 1
    augmented = torch.stack([mel for mel, _ in seen])
    waves = render_mels(torch.cat([originals, augmented]), spectrogram)
    for k, (c, (_, draw)) in enumerate(zip(chunks, seen, strict=True)):
        files = {"original": f"chunk_{k}_original.wav", "augmented": f"chunk_{k}_augmented.wav"}
        write_wav(out / files["original"], waves[k], sr)
        write_wav(out / files["augmented"], waves[len(chunks) + k], sr)
        fi, start = ds.chunk_index[c]
        manifest["items"].append(
            {
                "files": files,
                "source": ds.files[fi].rel,
                "start_s": round(start / ds.sample_rate, 3),
                "seconds": round(len(waves[k]) / sr, 3),
                "params": draw.to_dict(ds.sample_rate) if draw is not None else {},
            }
        )
    return write_seen(run_dir, manifest)
