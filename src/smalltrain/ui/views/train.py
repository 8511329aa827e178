"""The Train tab: dataset, preset and settings (validated by the task itself), remembered per
dataset, exported and imported as YAML; Start queues the job and opens the Job tab."""

from __future__ import annotations

import textwrap
import threading
import time
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import gradio as gr

from smalltrain.engine.fsutil import atomic_write_text
from smalltrain.errors import CheckpointError, ConfigError, WeightsNotFound, WrongModelKind
from smalltrain.service.execution.attempt import reason_of
from smalltrain.ui.child import calls
from smalltrain.ui.viewmodels import render
from smalltrain.ui.viewmodels.backend import Backend
from smalltrain.ui.viewmodels.settings import (
    MAIN_FIELDS,
    PRESETS,
    SLOTS,
    diff,
    dump_yaml,
    load_yaml,
    parse_advanced,
    split_fields,
)
from smalltrain.ui.views.common import EXPECTED, guard


@dataclass
class TrainTab:
    dataset: gr.Dropdown
    load_outputs: list[Any]
    load: Any  # the function filling the form for a dataset
    retry: Any  # job id -> [dataset, *load_outputs]: a failed job's settings in the form


def _describe(task: str, config: dict[str, Any]) -> str:
    """The main fields a preset chose, for a task whose config has no ``describe``."""
    shown = [f for f, _ in MAIN_FIELDS.get(task, [])] + ["optimizer", "nbs"]
    return ", ".join(f"{f} {config[f]}" for f in shown if f in config)


def _info(form: dict[str, Any]) -> str:
    chosen = form["config"].get("preset", form["preset"])
    preset = form["preset"]
    label = f"{escape(preset)} → {escape(str(chosen))}" if preset == "auto" else escape(preset)
    material = f" · {escape(form['material'])}" if form.get("material") else ""
    chosen_text = form.get("describe") or _describe(form["task"], form["preset_config"])
    describe = (
        f'<div class="st-dim st-small">The preset chose (your changes are listed below the '
        f'fields):</div><pre class="st-small">{escape(chosen_text)}</pre>'
        if chosen_text
        else ""
    )
    return (
        f'<div data-task="{escape(form["task"])}"><b>Task:</b> {escape(form["task"])} · '
        f"<b>preset:</b> {label} · {escape(form['snapshot'])}{material}{describe}</div>"
    )


def _changes_note(config: dict[str, Any], base: dict[str, Any]) -> str:
    changed = diff(config, base)
    if not changed:
        return "Settings are valid: the preset's values, unchanged."
    parts = [f"{k} {base.get(k)!r} → {v!r}" for k, v in changed.items()]
    return "Settings are valid. Changed from the preset: " + "; ".join(parts)


#: Config fields that name weights files (a vanished file is reset to the preset's value).
WEIGHTS_FIELDS = ("base_model",)

#: A second Start of the same form within this many seconds opens the first job.
SAME_START_S = 5.0

#: Where the validation notice is among ``TrainForm.fill``'s outputs.
STATUS_AT = 3 + SLOTS + 1
#: The outputs after the field slots: code, status, form, export, start, plan.
OUTPUTS_AFTER_SLOTS = ("code", "status", "form", "export", "start", "plan")


def _remembered(config: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    """What the form remembers of ``config``: its changes to the preset, and the fields the
    preset was planned around (a ``base_model`` the user chose is no change to its own plan,
    but the plan needs it again)."""
    planned = {k: config[k] for k in state.get("planned", {}) if k in config}
    return {**diff(config, state["preset_config"]), **planned}


def _plan(line: str) -> str:
    """The one line on how the model starts ("training from scratch", "fine-tuning X: …")."""
    if not line:
        return ""
    return f'<div class="st-plan st-small" data-plan="1"><b>Plan:</b> {escape(line)}</div>'


def _field_error(message: str | None) -> Any:
    """A field's error under it (or none: a stale error clears)."""
    if message:
        return gr.update(info=message, elem_classes=["st-field-error"])
    return gr.update(info="", elem_classes=[])


class TrainForm:
    """The form's logic, outside Gradio's wiring (each method returns the outputs' values)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.exports = backend.ui.root / "exports"
        self._starting = threading.Lock()
        self._recent: tuple[str, float, str] | None = None  # (form, when, job id) last started

    def _export(self, form: dict[str, Any], config: dict[str, Any]) -> str:
        path = self.exports / f"{form['dataset']}-{form['task']}-settings.yaml"
        atomic_write_text(path, dump_yaml(form["task"], form["dataset"], config))
        return str(path)

    def fill(self, form: dict[str, Any], model_name: str, note: str = "") -> list[Any]:
        """Every output of the form for a ``train_form`` result."""
        task, config = form["task"], form["config"]
        main, advanced = split_fields(task, config)
        slots = [
            gr.update(visible=True, label=label, value=text, info="", elem_classes=[])
            for _, label, text in main
        ]
        hidden = gr.update(visible=False, value="", info="", elem_classes=[])
        slots += [hidden] * (SLOTS - len(main))
        state = {**form, "fields": [f for f, _, _ in main]}
        status = (
            render.message(note, "warn")
            if note
            else render.message(_changes_note(config, form["preset_config"]), "ok")
        )
        return [
            gr.update(choices=PRESETS.get(task, ["auto"]), value=form["preset"]),
            gr.update(value=model_name, info="", elem_classes=[]),
            _info(form),
            *slots,
            advanced,
            status,
            state,
            gr.update(value=self._export(state, config), interactive=True),
            gr.update(interactive=True),
            _plan(form.get("start_line", "")),
        ]

    def load(self, dataset: str | None) -> list[Any]:
        """The remembered form of ``dataset`` (its preset with the remembered changes)."""
        if not dataset:
            return self.empty("Register a dataset in the Datasets tab to train on it.")
        saved = self.backend.settings.get(dataset)
        home = str(self.backend.home)
        note = ""
        overrides = dict(saved["overrides"])
        while True:
            try:
                form = self.backend.pool.call(
                    calls.train_form, home, dataset, saved["preset"], overrides
                )
                break
            except (ConfigError, WeightsNotFound, CheckpointError, WrongModelKind) as e:
                # the field at fault goes back to the preset's value; the others stay
                field = getattr(e, "field", None) or next(
                    (k for k in WEIGHTS_FIELDS if k in overrides), None
                )
                if field not in overrides:
                    form = self.backend.pool.call(calls.train_form, home, dataset, "auto", {})
                    overrides = {}
                    note = (
                        f"The remembered settings are not valid any more ({e}); showing the preset."
                    )
                    break
                del overrides[field]
                note += f"{field}: {e} The form shows the preset's {field}. "
        form["dataset"] = dataset
        self.backend.settings.set_last(dataset)
        return self.fill(form, saved["model_name"], note)

    def retry(self, job_id: str | None) -> list[Any]:
        """ "Edit and retry" of a job that failed on its config: its dataset and settings in the
        form, with what failed at the top; the user changes the field and starts again."""
        job = self.backend.manager.get_job(job_id or "")
        dataset = job.dataset or ""
        home = str(self.backend.home)
        base = self.backend.pool.call(calls.train_form, home, dataset, "auto", {})
        wanted = {k: v for k, v in job.config.items() if k in base["config"]}
        overrides = diff(wanted, base["preset_config"])
        self.backend.settings.save(dataset, "auto", overrides, job.model_name)
        out = self.load(dataset)
        failed = reason_of(job.error) or "failed"
        failed = textwrap.shorten(failed.split("\n")[0], 300, placeholder=" ...")
        out[STATUS_AT] = render.message(
            f"Job {job.id}'s settings, to edit: it failed on its config ({failed}). Change the "
            "field it names (base model: a name from the Weights tab, or a model .yaml to "
            "train from scratch), then Start training.",
            "warn",
        )
        return out

    def empty(self, text: str) -> list[Any]:
        slots = [gr.update(visible=False, value="")] * SLOTS
        return [
            gr.skip(),
            "",
            "",
            *slots,
            "",
            render.message(text, "info"),
            {},
            gr.update(interactive=False),
            gr.update(interactive=False),
            "",
        ]

    @staticmethod
    def changes(state: dict[str, Any], slots: tuple[str, ...], code: str) -> dict[str, Any]:
        """The form's fields (the inputs and the advanced YAML) as changes to the preset."""
        if not state.get("task"):
            raise ConfigError("dataset", None, "choose a dataset first")
        changes = parse_advanced(code)
        for field, text in zip(state["fields"], slots, strict=False):
            changes[field] = text.strip()
        return changes

    def current(self, state: dict[str, Any], slots: tuple[str, ...], code: str) -> dict[str, Any]:
        """The config the form shows now, validated by the task (ConfigError if not)."""
        changes = self.changes(state, slots, code)
        config = dict(
            self.backend.pool.call(calls.validate, state["task"], state["preset_config"], changes)
        )
        home = str(self.backend.home)
        self.backend.pool.call(calls.check_weights, home, state["task"], config)
        return config

    def edit(self, state: dict[str, Any], model_name: str, code: str, *slots: str) -> list[Any]:
        """Check the form as edited: every wrong field says so beside it, all at once, and
        Start waits until none is; a valid form is remembered. A new ``base_model`` re-plans
        the preset around it (a .pt: fine-tuning; a .yaml: from scratch), as the CLI does."""
        keep: list[Any] = [gr.skip()] * (len(OUTPUTS_AFTER_SLOTS) + 3 + SLOTS)
        if not state.get("task"):
            return keep
        try:
            changes = self.changes(state, slots, code)
        except EXPECTED as exc:  # the advanced YAML is not YAML
            return self._errors(state, keep, {"advanced settings": str(exc)})
        checked = self.backend.pool.call(
            calls.check_form, str(self.backend.home), state["task"], state["preset_config"],
            changes, model_name,
        )  # fmt: skip
        if checked["errors"]:
            return self._errors(state, keep, checked["errors"])
        config, base = checked["config"], state["preset_config"]
        name = model_name.strip()
        if config.get("base_model") != base.get("base_model"):
            return self._replan(state, diff(config, base), name, slots, code)
        self.backend.settings.save(
            state["dataset"], state["preset"], _remembered(config, state), name
        )
        out = keep
        out[1] = gr.update(info="", elem_classes=[])
        for i, _ in enumerate(state["fields"]):
            out[3 + i] = gr.update(info="", elem_classes=[])
        out[STATUS_AT] = render.message(_changes_note(config, base), "ok")
        out[STATUS_AT + 2] = gr.update(value=self._export(state, config))
        out[STATUS_AT + 3] = gr.update(interactive=True)
        out[STATUS_AT + 4] = _plan(checked["start_line"])
        return out

    def _errors(self, state: dict[str, Any], out: list[Any], errors: dict[str, str]) -> list[Any]:
        """Each error beside its field (the advanced YAML's in the list below), Start off."""
        fields = state.get("fields", [])
        out[1] = _field_error(errors.get("model_name"))
        for i, field in enumerate(fields):
            out[3 + i] = _field_error(errors.get(field))
        labels = dict(MAIN_FIELDS.get(state.get("task", ""), []))
        labels["model_name"] = "Model name"
        lines = [
            f'"{labels[f]}": {m}' if f in labels else f"{m} (in Advanced settings)"
            for f, m in errors.items()
        ]
        many = f"{len(errors)} fields need" if len(errors) > 1 else "1 field needs"
        out[STATUS_AT] = render.message(
            f"{many} a change before training can start: " + " · ".join(lines), "error"
        )
        out[STATUS_AT + 3] = gr.update(interactive=False)
        out[STATUS_AT + 4] = ""
        return out

    def _replan(
        self,
        state: dict[str, Any],
        overrides: dict[str, Any],
        name: str,
        slots: tuple[str, ...],
        code: str,
    ) -> list[Any]:
        """The form planned again around a new base model. A field whose value the plan leaves
        as the request had it is not sent back: the user may have typed on meanwhile."""
        form = self.backend.pool.call(
            calls.train_form, str(self.backend.home), state["dataset"], state["preset"], overrides
        )
        form["dataset"] = state["dataset"]
        kept = _remembered(form["config"], form)
        self.backend.settings.save(state["dataset"], state["preset"], kept, name)
        out = self.fill(form, name)
        out[1] = gr.update(info="", elem_classes=[])  # the model name as the user has it now
        for i, text in enumerate(slots):
            sent = out[3 + i]
            if i < len(state.get("fields", [])) and sent.get("value") == text.strip():
                out[3 + i] = gr.update(info="", elem_classes=[])
        if out[3 + SLOTS] == code:
            out[3 + SLOTS] = gr.skip()
        out[STATUS_AT] = render.message(
            f"The preset planned again for base_model {form['config'].get('base_model')}: "
            + form.get("start_line", "")
            + ". "
            + _changes_note(form["config"], form["preset_config"]),
            "ok",
        )
        return out

    def change_preset(
        self, state: dict[str, Any], preset: str, model_name: str, code: str, *slots: str
    ) -> list[Any]:
        """Switch preset, keeping the user's changes (when the form is valid)."""
        try:
            overrides = _remembered(self.current(state, slots, code), state)
        except EXPECTED:
            overrides = {}
        form = self.backend.pool.call(
            calls.train_form, str(self.backend.home), state["dataset"], preset, overrides
        )
        form["dataset"] = state["dataset"]
        self.backend.settings.save(state["dataset"], preset, overrides, model_name.strip())
        return self.fill(form, model_name)

    def reset(self, state: dict[str, Any], model_name: str) -> list[Any]:
        """Back to the preset's values."""
        form = self.backend.pool.call(
            calls.train_form, str(self.backend.home), state["dataset"], state["preset"], {}
        )
        form["dataset"] = state["dataset"]
        self.backend.settings.save(state["dataset"], state["preset"], {}, model_name.strip())
        return self.fill(form, model_name, "")

    def import_file(self, state: dict[str, Any], path: str | None, model_name: str) -> list[Any]:
        """Load a settings YAML (a task config's fields) into the form."""
        if not path:
            raise ConfigError("settings file", None, "no file chosen")
        if not state.get("task"):
            raise ConfigError("dataset", None, "choose a dataset first")
        data = load_yaml(path)
        base = state["preset_config"]
        config = self.backend.pool.call(calls.validate, state["task"], base, data)
        chosen = {k: config[k] for k in WEIGHTS_FIELDS if k in data}
        overrides = {**_remembered(config, state), **chosen}
        home = str(self.backend.home)
        form = self.backend.pool.call(
            calls.train_form, home, state["dataset"], state["preset"], overrides
        )
        form["dataset"] = state["dataset"]
        self.backend.settings.save(state["dataset"], state["preset"], overrides, model_name.strip())
        out = self.fill(form, model_name)
        out[STATUS_AT] = render.message(
            f"Imported {Path(path).name}. " + _changes_note(form["config"], form["preset_config"]),
            "ok",
        )
        return out

    def start(self, state: dict[str, Any], model_name: str, code: str, *slots: str) -> list[Any]:
        """Queue the job and open it in the Job tab. The same form started again within
        ``SAME_START_S`` (a double click, a second click while the page catches up) opens the
        job already queued instead of queueing a second one."""
        changes = self.changes(state, slots, code)
        base = state["preset_config"]
        key = repr((state["dataset"], sorted(base.items()), sorted(changes.items()), model_name))
        with self._starting:
            recent = self._recent
            if (
                recent is not None
                and recent[0] == key
                and time.monotonic() - recent[1] < SAME_START_S
            ):
                job = self.backend.manager.get_job(recent[2])
                note = (
                    f"Job {job.id} was queued a moment ago with these settings "
                    f"(model {job.model_name!r}); it is not queued twice."
                )
                return [render.message(note, "ok"), "", gr.update(selected="job"), job.id]
            job = self.backend.start_job(
                state["dataset"], base, model_name.strip() or None, changes
            )
            self._recent = (key, time.monotonic(), job.id)
        self.backend.settings.save(
            state["dataset"], state["preset"], _remembered(dict(job.config), state), ""
        )
        note = render.message(f"Job {job.id} queued: model {job.model_name!r}.", "ok")
        return [note, "", gr.update(selected="job"), job.id]


def build(backend: Backend, tabs: gr.Tabs, started: gr.Textbox) -> TrainTab:
    """Lay out the tab and wire its events."""
    logic = TrainForm(backend)
    form = gr.State({})
    with gr.Row():
        dataset = gr.Dropdown(
            label="Dataset", choices=[], scale=3, interactive=True, elem_id="train-dataset"
        )
        preset = gr.Dropdown(
            label="Preset",
            choices=["auto"],
            value="auto",
            scale=1,
            interactive=True,
            elem_id="train-preset",
        )
        model_name = gr.Textbox(
            label="Model name",
            placeholder="automatic: <task>-<date>-<time>",
            scale=2,
            elem_id="train-model-name",
        )
    info = gr.HTML(elem_id="train-info")
    plan = gr.HTML(elem_id="train-plan")
    slots = []
    with gr.Row():
        for i in range(SLOTS // 2):
            slots.append(
                gr.Textbox(label="", visible=False, min_width=140, elem_id=f"train-field-{i}")
            )
    with gr.Row():
        for i in range(SLOTS // 2, SLOTS):
            slots.append(
                gr.Textbox(label="", visible=False, min_width=140, elem_id=f"train-field-{i}")
            )
    with gr.Accordion("Advanced settings: every other field (YAML)", open=False):
        code = gr.Code(
            language="yaml",
            lines=16,
            label="Advanced settings",
            show_label=False,
            elem_id="train-yaml",
        )
    status = gr.HTML(elem_id="train-status")
    with gr.Row():
        start = gr.Button("Start training", variant="primary", scale=2, elem_id="train-start")
        reset = gr.Button("Reset to the preset", scale=1, elem_id="train-reset")
        export = gr.DownloadButton(
            "Export YAML", interactive=False, scale=1, elem_id="train-export"
        )
        upload = gr.UploadButton(
            "Import YAML",
            file_types=[".yaml", ".yml"],
            type="filepath",
            scale=1,
            elem_id="train-import",
        )
    message = gr.HTML(elem_id="train-message")

    outputs = [preset, model_name, info, *slots, code, status, form, export, start, plan]

    status_at = outputs.index(status)
    dataset.input(guard(logic.load, len(outputs), status_at), dataset, outputs)
    preset.input(
        guard(logic.change_preset, len(outputs), status_at),
        [form, preset, model_name, code, *slots],
        outputs,
    )
    boxes: list[gr.Textbox | gr.Code] = [*slots, code, model_name]
    # Typing validates (and remembers); leaving a field does too (a paste). One listener for
    # every field: "always_last" then keeps the checks in order, so an older answer never
    # overwrites a newer one.
    gr.on(
        [t for box in boxes for t in (box.input, box.blur)],
        guard(logic.edit, len(outputs), status_at),
        [form, model_name, code, *slots],
        outputs,
        trigger_mode="always_last",
        show_progress="hidden",
    )
    reset.click(guard(logic.reset, len(outputs), status_at), [form, model_name], outputs)
    upload.upload(
        guard(logic.import_file, len(outputs), status_at), [form, upload, model_name], outputs
    )
    start.click(
        guard(logic.start, 4, 0),
        [form, model_name, code, *slots],
        [message, model_name, tabs, started],
    )

    def retry(job_id: str | None) -> list[Any]:
        job = backend.manager.get_job(job_id or "")
        return [gr.update(value=job.dataset), *logic.retry(job_id)]

    return TrainTab(dataset=dataset, load_outputs=outputs, load=logic.load, retry=retry)
