"""The model half of ``TrainingManager``: list, get, delete and activate registered models.

A mixin so that the manager module stays about jobs; it needs ``self.models`` (a
``ModelStore``).
"""

from __future__ import annotations

from smalltrain.errors import ModelNotFound
from smalltrain.store.models import ModelInfo, ModelStore

__all__ = ["ModelQueries"]


class ModelQueries:
    """Registered models, by name (and dataset when a name is not unique)."""

    models: ModelStore

    def list_models(self, dataset: str | None = None) -> list[ModelInfo]:
        """Registered models of one dataset, or of all."""
        return self.models.list(dataset)

    def _find_model(self, name: str, dataset: str | None) -> ModelInfo:
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

    def get_model(self, name: str, dataset: str | None = None) -> ModelInfo:
        """One registered model; ``dataset`` may be omitted when the name is unique."""
        return self._find_model(name, dataset)

    def delete_model(self, name: str, dataset: str | None = None) -> bool:
        """Delete a registered model (deleting the active one clears ``active``)."""
        model = self._find_model(name, dataset)
        return self.models.delete(model.dataset, model.name)

    def set_active_model(self, name: str, dataset: str | None = None) -> ModelInfo:
        """Mark a model as its dataset's active model; return it."""
        model = self._find_model(name, dataset)
        self.models.set_active(model.dataset, model.name)
        return self.models.get(model.dataset, model.name)

    def get_active_model(self, dataset: str) -> ModelInfo | None:
        """The active model of ``dataset``, or None."""
        return self.models.get_active(dataset)
