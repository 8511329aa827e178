"""Audio task: a VAE on log-mel spectrograms trained on a folder of sounds."""
