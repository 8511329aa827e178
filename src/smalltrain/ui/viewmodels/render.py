"""HTML pieces of the UI (pure functions of plain data; every value is escaped).

File links point at the server's own API (``/api/jobs/<id>/previews/<file>``,
``/api/outputs/<folder>/<file>``), so audio plays from the same origin, behind the same auth.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from smalltrain.engine.jobs import JobStatus, TrainingJob
from smalltrain.engine.plain import fmt_number as glossary_fmt
from smalltrain.service import glossary
from smalltrain.service.execution.attempt import reason_of
from smalltrain.ui.viewmodels.charts import line_chart
from smalltrain.ui.viewmodels.jobs import JobView
from smalltrain.ui.viewmodels.settings import form_advice

__all__ = [
    "Html",
    "audio_list",
    "badge",
    "charts",
    "fmt_duration",
    "gauges",
    "job_header",
    "log_block",
    "message",
    "fmt_value",
    "metric",
    "metrics_line",
    "previews",
    "progress",
    "report",
    "sounds",
    "table",
    "warnings",
    "when",
]

_BADGE = {
    JobStatus.QUEUED: "grey",
    JobStatus.STARTING: "blue",
    JobStatus.TRAINING: "blue",
    JobStatus.CANCELLING: "amber",
    JobStatus.COMPLETED: "green",
    JobStatus.CANCELLED: "amber",
    JobStatus.FAILED: "red",
    JobStatus.INTERRUPTED: "amber",
}


def when(ts: float | None) -> str:
    """A local date and time, or ``-``."""
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def fmt_duration(seconds: float | None) -> str:
    """``42 s``, ``3 min 05 s`` or ``1 h 02 min``; ``-`` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def badge(status: JobStatus | str) -> str:
    """A coloured status label (``data-status`` carries the raw value)."""
    status = JobStatus(status)
    return (
        f'<span class="st-badge st-{_BADGE.get(status, "grey")}" data-status="{status.value}">'
        f"{status.value}</span>"
    )


def message(text: str, kind: str = "info") -> str:
    """A one-line notice: kind is "info", "ok", "warn" or "error"."""
    return f'<div class="st-msg st-msg-{escape(kind)}">{escape(text)}</div>' if text else ""


def job_header(job: TrainingJob) -> str:
    """Who the job is: status, model, dataset, task, reason, run folder."""
    reason = job.status_reason or reason_of(job.error) or ""
    return (
        f'<div class="st-jobhead" data-job="{escape(job.id)}">'
        f'<div class="st-jobtitle">{badge(job.status)} <b>{escape(job.model_name)}</b> '
        f'<span class="st-dim">job {escape(job.id)} · {escape(job.task)} on '
        f"{escape(job.dataset or job.dataset_path)}</span></div>"
        + (f'<div class="st-reason">{escape(reason)}</div>' if reason else "")
        + '<div class="st-dim st-small">run folder: '
        + f"<code>{escape(job.run_dir or '-')}</code></div>"
        "</div>"
    )


def progress(job: TrainingJob, view: JobView | None = None) -> str:
    """The progress bar: percent, epoch, step, speed, elapsed and ETA."""
    pct = max(0.0, min(1.0, job.progress)) * 100
    parts = []
    if job.total_epochs:
        parts.append(
            f"epoch {min(job.epoch + (0 if job.is_terminal else 1), job.total_epochs)}"
            f"/{job.total_epochs}"
        )
    if job.total_steps:
        parts.append(f"step {job.step}/{job.total_steps}")
    if view is not None:
        if view.rate:
            parts.append(f"{view.rate:.2f} steps/s")
        parts.append(f"elapsed {fmt_duration(view.elapsed_s)}")
        if view.eta_s is not None and job.status is JobStatus.TRAINING:
            parts.append(f"ETA {fmt_duration(view.eta_s)}")
    text = " · ".join(parts) or ("waiting to start" if job.status is JobStatus.QUEUED else "")
    active = " st-active" if job.is_active else ""
    return (
        f'<div class="st-progress{active}" role="progressbar" aria-valuemin="0" '
        f'aria-valuemax="100" aria-valuenow="{pct:.1f}" data-step="{job.step}" '
        f'data-epoch="{job.epoch}" data-status="{job.status.value}">'
        f'<div class="st-bar"><div class="st-fill" style="width:{pct:.1f}%"></div></div>'
        f'<div class="st-progress-text"><b>{pct:.0f}%</b> {escape(text)}</div></div>'
    )


def _gauge(label: str, percent: float | None, detail: str = "") -> str:
    if percent is None:
        return (
            f'<div class="st-gauge" data-gauge="{escape(label)}"><span>{escape(label)}</span>'
            f'<div class="st-bar st-na"></div><em>{escape(detail or "n/a")}</em></div>'
        )
    level = "red" if percent > 90 else "amber" if percent > 75 else "green"
    return (
        f'<div class="st-gauge" data-gauge="{escape(label)}"><span>{escape(label)}</span>'
        f'<div class="st-bar"><div class="st-fill st-{level}" style="width:{percent:.0f}%">'
        f"</div></div><em>{percent:.0f}%{(' · ' + escape(detail)) if detail else ''}</em></div>"
    )


def gauges(status: Mapping[str, Any] | None, job: bool = True, ended: bool = False) -> str:
    """CPU, RAM and each GPU's memory as small bars ("no GPU detected" when there is none);
    with ``job``, the running job's resident memory too (never for a job that has ended).
    Before the first sample: "measuring…" while a job runs; for an ended job (or none) a
    plain line, never a measurement that will not come."""
    if not status:
        if ended:
            return (
                '<div class="st-gauges st-dim" data-ended="1">This job has ended: it uses no '
                "CPU, memory or GPU now. The machine's gauges show here while a job runs.</div>"
            )
        return '<div class="st-gauges st-dim">measuring…</div>'
    cells = [
        _gauge("CPU", status.get("cpu_percent")),
        _gauge("RAM", status.get("ram_percent"), status.get("ram_detail", "")),
    ]
    gpus = status.get("gpus") or []
    for g in gpus:
        used = g.get("memory_used_bytes", 0) / 2**30
        total = g.get("memory_total_bytes", 0) / 2**30
        cells.append(
            _gauge(
                f"GPU {g.get('index', 0)}", g.get("memory_percent"), f"{used:.1f}/{total:.1f} GiB"
            )
        )
    if not gpus:
        cells.append(_gauge("GPU", None, status.get("gpu_note") or "no GPU detected"))
    if job and status.get("job_rss_bytes"):
        cells.append(
            f'<div class="st-gauge"><span>job</span><em>{status["job_rss_bytes"] / 2**20:.0f} MiB '
            "resident</em></div>"
        )
    return f'<div class="st-gauges">{"".join(cells)}</div>'


def charts(view: JobView) -> str:
    """The job's charts in a grid."""
    cells = [
        line_chart(c.title, [(s.label, s.points) for s in c.series], c.x_label) for c in view.charts
    ]
    return f'<div class="st-charts">{"".join(cells)}</div>'


def warnings(view: JobView) -> str:
    """Warnings as they arrived, newest last."""
    if not view.warnings:
        return '<div class="st-dim st-small">No warnings.</div>'
    items = []
    for w in view.warnings:
        epoch = w.get("epoch")
        at = f"epoch {int(epoch) + 1}" if isinstance(epoch, int) else when(w.get("time"))
        items.append(
            f'<li data-code="{escape(str(w.get("code", "")))}"><b>{escape(str(w.get("code", "")))}'
            f'</b> <span class="st-dim">{escape(at)}</span><br>'
            f"{escape(form_advice(str(w.get('message', '')), view.job.task))}</li>"
        )
    return f'<ul class="st-warnings">{"".join(items)}</ul>'


def _player(url: str, label: str, preload: str = "metadata") -> str:
    """A labelled player; ``preload="metadata"`` shows the sound's length before it is played
    (a player reading 0:00 / 0:00 looks empty), "none" for players folded away."""
    return (
        f'<div class="st-audio"><span>{escape(label)}</span>'
        f'<audio controls preload="{preload}" src="{escape(url)}"></audio>'
        f'<a href="{escape(url)}?download=1" download>download</a></div>'
    )


def previews(
    job_id: str,
    items: Sequence[tuple[int, Sequence[str]]],
    newest: int = 2,
    info: Mapping[str, Any] | None = None,
    every: int | None = None,
) -> str:
    """Audio players of every preview epoch, newest first; older than the newest ``newest``
    epochs are folded. With ``info`` (the run's ``previews.json``), each "recon" says which
    file it reconstructs and has that chunk's original beside it, for A/B listening.
    ``every`` is the run's ``preview_every``: 0 says previews are off and how to turn them on,
    instead of promising previews that will not come."""
    if not items and every == 0:
        return message(
            "Previews are off for this run (preview every N epochs = 0). To hear the model as "
            'it trains, set the Train tab\'s "Preview every N epochs (0 = off)" field, e.g. to '
            "5, for the next run."
        )
    if not items:
        return message("Previews appear here after the epochs that write them.")
    recon = dict((info or {}).get("recon") or {})

    def url(name: str) -> str:
        return f"/api/jobs/{quote(job_id)}/previews/{quote(name)}"

    blocks = []
    for i, (epoch, names) in enumerate(list(items)[::-1]):
        preload = "metadata" if i < newest else "none"
        players = "".join(_preview_player(url, n, recon, preload) for n in names)
        grid = f'<div class="st-players">{players}</div>'
        if i < newest:
            blocks.append(
                f'<div class="st-preview" data-epoch="{epoch}"><h4>epoch {epoch}</h4>{grid}</div>'
            )
        else:
            blocks.append(
                f'<details class="st-preview" data-epoch="{epoch}"><summary>epoch {epoch}</summary>'
                f"{grid}</details>"
            )
    return f'<div class="st-previews">{_recon_note(url, recon)}{"".join(blocks)}</div>'


def _span(recon: Mapping[str, Any]) -> str:
    start = float(recon.get("start_s") or 0.0)
    return f"{start:.2f}–{start + float(recon.get('seconds') or 0.0):.2f} s"


def _recon_note(url: Any, recon: Mapping[str, Any]) -> str:
    """Above the epochs: what "recon" is, with its original and the inversion alone."""
    if not recon.get("file"):
        return ""
    text = (
        f"“recon” is the model's reconstruction of {recon['file']} ({_span(recon)}), a "
        "validation file it does not train on; compare it with the original beside it. "
        "“through the inversion” is the original's spectrogram turned back into sound with no "
        "model: what the spectrogram alone keeps."
    )
    reference = str(recon.get("reference") or "")
    extra = _player(url(reference), "through the inversion (no model)") if reference else ""
    players = f'<div class="st-players">{extra}</div>'
    return f'<div class="st-recon-note">{message(text, "info")}{players}</div>'


def _preview_label(name: str) -> str:
    """``epoch_0002_sample_1.wav`` → ``sample 1``; ``epoch_0002_recon.wav`` → ``recon``."""
    stem = Path(name).stem
    parts = stem.split("_")
    return " ".join(parts[2:]) if len(parts) > 2 and parts[0] == "epoch" else stem


def _preview_player(url: Any, name: str, recon: Mapping[str, Any], preload: str) -> str:
    label = _preview_label(name)
    # every preview is one chunk long; a browser's player reads 0:00 for 0.9 s
    length = f" · {float(recon['seconds']):.2f} s" if recon.get("seconds") else ""
    if label != "recon" or not recon.get("file"):
        return _player(url(name), label + length, preload)
    original = str(recon.get("original") or "")
    pair = _player(url(name), f"B · recon of {recon['file']}{length}", preload)
    if original:
        a = f"A · original: {recon['file']} ({_span(recon)})"
        pair = _player(url(original), a, preload) + pair
    return f'<div class="st-ab st-recon" data-source="{escape(str(recon["file"]))}">{pair}</div>'


def _seconds(seconds: Sequence[float], i: int) -> str:
    return f" · {seconds[i]:.2f} s" if i < len(seconds) else ""


def audio_list(
    folder: str, files: Iterable[str], labels: Sequence[str] = (), seconds: Sequence[float] = ()
) -> str:
    """Players (with download links) for files of a "use" output folder; ``labels`` (e.g.
    "A · original") go before the file names, ``seconds`` (each file's length) after them."""
    players = [
        _player(
            f"/api/outputs/{quote(folder)}/{quote(Path(f).name)}",
            (f"{labels[i]}: {Path(f).name}" if i < len(labels) else Path(f).name)
            + _seconds(seconds, i),
        )
        for i, f in enumerate(files)
    ]
    return f'<div class="st-players st-outputs">{"".join(players)}</div>' if players else ""


def _output_url(folder: str, file: str | Path) -> str:
    return f"/api/outputs/{quote(folder)}/{quote(Path(file).name)}"


def sounds(
    folder: str,
    files: Sequence[str],
    spectrograms: Sequence[str] = (),
    archive: str = "",
    seconds: Sequence[float] = (),
) -> str:
    """Made sounds as cards: the full file name and length, a player with its download link
    and the sound's spectrogram; above them a "Download all" link to ``archive`` (a zip of the
    same output folder)."""
    cards = []
    for i, f in enumerate(files):
        image = ""
        if i < len(spectrograms):
            url = escape(_output_url(folder, spectrograms[i]))
            image = (
                f'<a href="{url}" target="_blank"><img src="{url}" '
                f'alt="spectrogram of {escape(Path(f).name)}"></a>'
            )
        cards.append(
            f'<div class="st-sound" data-file="{escape(Path(f).name)}">'
            f"{_player(_output_url(folder, f), Path(f).name + _seconds(seconds, i))}{image}</div>"
        )
    if not cards:
        return ""
    top = ""
    if archive:
        url = escape(_output_url(folder, archive) + "?download=1")
        top = (
            f'<div class="st-download-all"><a class="st-buttonlink" href="{url}" download>'
            f"Download all ({len(cards)} sound{'s' if len(cards) != 1 else ''}, zip)</a></div>"
        )
    return f'{top}<div class="st-sounds st-outputs">{"".join(cards)}</div>'


def images(folder: str, files: Iterable[str]) -> str:
    """Images of a "use" output folder in a grid, each opening full size in a new tab."""
    cells = []
    for f in files:
        name = escape(Path(f).name)
        url = escape(f"/api/outputs/{quote(folder)}/{quote(Path(f).name)}")
        cells.append(
            f'<figure><a href="{url}" target="_blank"><img src="{url}" alt="{name}"></a>'
            f"<figcaption>{name}</figcaption></figure>"
        )
    return f'<div class="st-images">{"".join(cells)}</div>' if cells else ""


def log_block(lines: Sequence[str]) -> str:
    """Event log lines in a scrolling monospace box (newest at the bottom)."""
    body = escape("\n".join(lines)) if lines else "no events yet"
    return f'<pre class="st-log">{body}</pre>'


class Html(str):
    """Markup made here (escaped where it holds values): a table cell keeps it as it is."""


def _cell(value: Any) -> str:
    return str(value) if isinstance(value, Html) else escape(str(value))


def metric(key: str, value: float | None = None, text: str | None = None) -> Html:
    """A metric's readable name (or ``text``) and value, its lay explanation on hover
    (``glossary``)."""
    text = glossary.label(key) if text is None else text
    if value is not None:
        text += f" {value:.4g}" if isinstance(value, float) else f" {value}"
    tip = glossary.explain(key)
    if not tip:
        return Html(escape(text))
    return Html(
        f'<abbr class="st-metric" data-metric="{escape(key)}" title="{escape(tip)}">'
        f"{escape(text)}</abbr>"
    )


def fmt_value(value: Any) -> str:
    """A table value: numbers as the CLI prints them, anything else as text ("-" for none)."""
    if value is None:
        return "-"
    return glossary_fmt(value) if isinstance(value, (int, float)) else str(value)


def metrics_line(items: Iterable[tuple[str, Any]]) -> Html:
    """``[(key, value)]`` as readable names with values, explained on hover, joined by ``·``."""
    return Html(" · ".join(metric(k, v) for k, v in items))


def table(headers: Sequence[str] | None, rows: Iterable[Sequence[Any]], cls: str = "") -> str:
    """A plain HTML table (``headers=None``: no header row, e.g. for key-value tables)."""
    head = ""
    if headers is not None:
        head = "<thead><tr>" + "".join(f"<th>{_cell(h)}</th>" for h in headers) + "</tr></thead>"
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f'<table class="st-table {escape(cls)}">{head}<tbody>{body}</tbody></table>'


def report(data: Mapping[str, Any]) -> str:
    """An inspection report: headline counts, and every skipped file or problem with why."""
    if data.get("kind") == "detect":
        return _detect_report(data)
    skipped = data.get("skipped") or []
    rows = [
        ("files used", len(data.get("files") or [])),
        ("total duration", fmt_duration(data.get("total_duration_s"))),
        (
            "sample rates",
            ", ".join(f"{r} Hz ×{n}" for r, n in (data.get("sample_rates") or {}).items()),
        ),
        ("channels", ", ".join(f"{c} ch ×{n}" for c, n in (data.get("channels") or {}).items())),
        ("material", data.get("material_summary") or data.get("material") or "-"),
        ("ignored (not audio)", data.get("ignored", 0)),
        ("skipped", len(skipped)),
    ]
    out = _report_warnings(data) + table(None, rows, "st-kv")
    if skipped:
        out += "<h4>Skipped files</h4>" + table(
            ("file", "why"), [(s["path"], s["reason"]) for s in skipped], "st-skipped"
        )
    return f'<div class="st-report" data-kind="audio">{out}</div>'


def _report_warnings(data: Mapping[str, Any]) -> str:
    """The inspection's warnings (and an upload's notes), first: they change what the numbers
    below mean."""
    notes = [*(data.get("upload_notes") or []), *(data.get("warnings") or [])]
    items = "".join(message(str(w), "warn") for w in notes)
    return f'<div class="st-report-warnings">{items}</div>' if items else ""


def _detect_report(data: Mapping[str, Any]) -> str:
    problems = data.get("problems") or []
    splits = data.get("images_per_split") or {}
    size = data.get("median_size") or [0, 0]
    rows = [
        ("images", ", ".join(f"{k} {v}" for k, v in splits.items())),
        ("classes", ", ".join(data.get("names") or [])),
        ("background images", data.get("background_images", 0)),
        ("median image size", f"{size[0]}×{size[1]}"),
        ("images left out", sum((data.get("skipped_per_split") or {}).values())),
    ]
    out = _report_warnings(data) + table(None, rows, "st-kv")
    inst = data.get("instances_per_class") or {}
    out += "<h4>Instances per class</h4>" + table(("class", "instances"), inst.items())
    if problems:
        out += "<h4>Problems (skipped)</h4>" + table(
            ("file", "line", "problem"),
            [(p["file"], p["line"] or "", p["message"]) for p in problems[:200]],
            "st-skipped",
        )
    return f'<div class="st-report" data-kind="detect">{out}</div>'
