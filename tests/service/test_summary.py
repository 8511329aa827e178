"""The end-of-job verdict against the PCA baseline (``service.summary.verdict``)."""

from __future__ import annotations

from smalltrain.service.summary import verdict


def test_a_pca_no_better_than_silence_gives_no_verdict() -> None:
    # the UI's 4-file job: 8 training chunks, PCA with k = 7 extrapolating to the one
    # validation chunk (212.3 before its reconstruction was clipped, 1.57 after)
    for pca in (212.3, 1.57, 1.0):
        metrics = {"val/sc": 1.002, "pca/sc": pca, "pca/k": 7.0, "pca/train_sc": 0.0}
        text = verdict("audio", metrics)
        assert "closer" not in text
        assert "further" not in text
        assert text.startswith("no verdict against a linear model of its size (PCA)")
        assert "no better than silence" in text


def test_a_small_split_still_gets_a_verdict_when_pca_means_something() -> None:
    # 36 training chunks: PCA reproduces them exactly (k = 35) but scores 0.62 held out
    metrics = {"val/sc": 0.50, "pca/sc": 0.62, "pca/k": 35.0, "pca/train_sc": 0.0}
    assert "19% closer than a linear model of its size (PCA)" in verdict("audio", metrics)


def test_a_real_pca_fit_gives_a_verdict() -> None:
    metrics = {"val/sc": 0.30, "pca/sc": 0.40, "pca/k": 60.0, "pca/train_sc": 0.21}
    assert verdict("audio", metrics).startswith("it reproduces sounds it never heard 25% closer")
    worse = {**metrics, "val/sc": 0.5}
    assert "25% further off than a linear model of its size (PCA)" in verdict("audio", worse)
    older = {"val/sc": 0.30, "pca/sc": 0.40}  # jobs from before pca/train_sc was recorded
    assert "25% closer" in verdict("audio", older)


def test_worse_than_pca_says_train_longer_only_when_the_model_was_still_improving() -> None:
    """A model best at epoch 3 of 400 was told to "train longer"."""
    metrics = {"val/sc": 0.5, "pca/sc": 0.4, "best_epoch": 2.0}
    early = verdict("audio", metrics, epochs_run=400)
    assert "its best was epoch 3 of 400, so more epochs would not help" in early, early
    assert "train longer" not in early
    late = verdict("audio", {**metrics, "best_epoch": 390.0}, epochs_run=400)
    assert late.endswith("train longer or on more sounds"), late
    assert verdict("audio", metrics).endswith("train longer or on more sounds")  # unknown


def test_the_evaluation_verdict_is_one_rule_for_the_cli_and_the_page() -> None:
    from smalltrain.service.summary import evaluation_verdict

    def data(model: float, pca: float, **extra: object) -> dict[str, object]:
        base = {"model": {"sc": model}, "baseline_pca": {"sc": pca, "k": 60, "train_chunks": 90}}
        return {**base, **extra}

    assert "the model beats the linear baseline" in evaluation_verdict(data(0.40, 0.50))
    assert "is level with" in evaluation_verdict(data(0.500, 0.503))
    assert "does not beat" in evaluation_verdict(data(0.60, 0.50))
    assert evaluation_verdict(data(0.40, 0.50)).startswith("model SC 0.400, PCA-60 SC 0.500")
    remembered = evaluation_verdict(data(0.01, 0.02, in_training=["a.wav", "b.wav"]))
    assert "no verdict. 2 of the files evaluated were in the model's training split" in remembered
    marked = evaluation_verdict(data(0.01, 0.02, in_training=["a.wav"]), marked=True)
    assert "in the model's training split (marked below), so" in marked
    silent = evaluation_verdict(data(0.9, 1.3))
    assert "no verdict. PCA does no better than silence" in silent
    assert "beats" not in silent
