"""What the model sees, as the Job view shows it: players (audio) or a gallery (detection).

Reads the run's ``seen/seen.json`` (``engine.seen``); file links point at
``/api/jobs/<id>/seen/<file>``, which serves only the files that manifest lists.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any
from urllib.parse import quote

from smalltrain.ui.viewmodels.render import message

__all__ = ["audio_params", "seen_html"]

_WAITING = "Shown once training starts: a few training examples as the model sees them."


def _url(job_id: str, name: str) -> str:
    return f"/api/jobs/{quote(job_id)}/seen/{quote(name)}"


def audio_params(params: Mapping[str, Any]) -> str:
    """One chunk's augmentation settings as text: ``speed 1.04× · gain -2.3 dB · ...``."""
    parts = [f"speed {float(params.get('speed', 1.0)):.3f}×"]
    if params.get("pitch_semitones"):
        parts.append(f"pitch {float(params['pitch_semitones']):+.2f} st")
    parts.append(f"gain {float(params.get('gain_db', 0.0)):+.1f} dB")
    snr = params.get("noise_snr_db")
    parts.append("no noise" if snr is None else f"noise at {float(snr):.1f} dB SNR")
    parts.append(f"shift {float(params.get('shift_s', 0.0)):+.3f} s")
    return " · ".join(parts)


def _player(url: str, label: str) -> str:
    # preload="metadata": with "none" a browser draws the player greyed out, as if disabled,
    # until it is played (six small WAVs, fetched once per rendering of the section)
    return (
        f'<div class="st-audio"><span>{escape(label)}</span>'
        f'<audio controls preload="metadata" src="{escape(url)}"></audio></div>'
    )


def _audio(job_id: str, manifest: Mapping[str, Any]) -> str:
    rows = []
    for item in manifest.get("items") or []:
        files = item.get("files") or {}
        where = f"{item.get('source', '?')} at {float(item.get('start_s', 0.0)):.2f} s"
        # a browser's player reads 0:00 / 0:00 for a chunk under a second: say its length
        length = f" · {float(item['seconds']):.2f} s" if item.get("seconds") else ""
        rows.append(
            '<div class="st-seen-item">'
            f"<h4>{escape(where)}</h4>"
            '<div class="st-players">'
            f"{_player(_url(job_id, str(files.get('original', ''))), 'original' + length)}"
            f"{_player(_url(job_id, str(files.get('augmented', ''))), 'augmented' + length)}</div>"
            f'<p class="st-seen-params">{escape(audio_params(item.get("params") or {}))}</p>'
            "</div>"
        )
    return "".join(rows)


def _detect(job_id: str, manifest: Mapping[str, Any]) -> str:
    cells = []
    for item in manifest.get("items") or []:
        name = str((item.get("files") or {}).get("image", ""))
        url = escape(_url(job_id, name))
        caption = (
            f"batch {int(item.get('batch', 0))}, epoch {int(item.get('epoch', 0)) + 1}: "
            f"{'mosaic' if item.get('mosaic') else 'no mosaic'}, {item.get('images', '?')} "
            f"images, {item.get('boxes', '?')} boxes"
        )
        cells.append(
            f'<figure><a href="{url}" target="_blank"><img src="{url}" alt="{escape(name)}"></a>'
            f"<figcaption>{escape(caption)}</figcaption></figure>"
        )
    return f'<div class="st-images st-seen-gallery">{"".join(cells)}</div>'


def _settings(aug: Mapping[str, Any] | None) -> str:
    if not aug:
        return ""
    text = ", ".join(
        f"{k} {'-'.join(f'{x:g}' for x in v) if isinstance(v, list) else v}" for k, v in aug.items()
    )
    return f'<p class="st-dim st-seen-settings">settings: {escape(text)}</p>'


def seen_html(job_id: str, manifest: Mapping[str, Any] | None) -> str:
    """The Job view's "What the model sees" block for one job's manifest (None: not yet)."""
    if not manifest:
        return message(_WAITING)
    task = manifest.get("task")
    body = _audio(job_id, manifest) if task == "audio" else _detect(job_id, manifest)
    note = message(str(manifest["note"])) if manifest.get("note") else ""
    return (
        f'<div class="st-seen" data-task="{escape(str(task))}">{note}{body}'
        f"{_settings(manifest.get('augmentation'))}</div>"
    )
