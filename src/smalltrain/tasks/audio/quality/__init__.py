"""The scores a trained model gets: mel metrics, the PCA baseline, Frechet and generation scores,
and what the ear hears (rendered waveforms)."""
