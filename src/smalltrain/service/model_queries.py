"""``ModelQueries``: registered models by name, deleted or made active by the rules of every face.

``TrainingManager.model_queries`` is one, over the manager's ``ModelStore``; the manager's
public ``get_model``, ``delete_model`` and ``set_active_model`` call it.
"""

from __future__ import annotations

from dataclasses import dataclass

from smalltrain.errors import ModelNotFound
from smalltrain.service.registration import best_model
from smalltrain.store.models import ModelInfo, ModelStore

__all__ = ["Deleted", "ModelQueries"]


@dataclass(frozen=True)
class Deleted:
    """What deleting a model did: whether anything was deleted, the model made active in its
    place (when the active one was deleted) and why, in words."""

    deleted: bool
    active: ModelInfo | None
    why: str

    def note(self) -> str:
        """One sentence for the user ("" when the deleted model was not active)."""
        if self.active is not None:
            return f"{self.active.name!r} is now the active model: {self.why}."
        return f"{self.why[0].upper()}{self.why[1:]}." if self.why else ""


class ModelQueries:
    """Registered models, by name (and dataset when a name is not unique).

    Args:
        models: the home's model store.
    """

    def __init__(self, models: ModelStore) -> None:
        self.models = models

    def find(self, name: str, dataset: str | None = None) -> ModelInfo:
        """One registered model; ``dataset`` may be omitted when the name is unique.

        Raises:
            ModelNotFound: no model of that name, or several datasets have one.
        """
        if dataset is not None:
            return self.models.get(dataset, name)
        found = [m for m in self.models.list() if m.name == name]
        if not found:
            raise ModelNotFound(f"No model named {name!r}. List them with: smalltrain models list")
        if len(found) > 1:
            where = ", ".join(m.dataset for m in found)
            raise ModelNotFound(
                f"Several datasets have a model named {name!r} ({where}); name the dataset"
            )
        return found[0]

    def delete_and_promote(self, name: str, dataset: str | None = None) -> Deleted:
        """Delete a registered model. When it was active, the best remaining model of its
        dataset on the task's headline metric becomes active (not the newest), and the result
        says which and why; every face (CLI, web UI, API) deletes through here."""
        model = self.find(name, dataset)
        deleted = self.models.delete(model.dataset, model.name)
        if not model.active:
            return Deleted(deleted, None, "")
        rest = self.models.list(model.dataset)
        pick, why = best_model(rest, model.headline_metric)
        if pick is None:
            return Deleted(deleted, None, f"dataset {model.dataset!r} has no active model: {why}")
        self.models.set_active(model.dataset, pick.name)
        return Deleted(deleted, self.models.get(model.dataset, pick.name), why)

    def set_active(self, name: str, dataset: str | None = None) -> ModelInfo:
        """Mark a model as its dataset's active model; return it."""
        model = self.find(name, dataset)
        self.models.set_active(model.dataset, model.name)
        return self.models.get(model.dataset, model.name)
