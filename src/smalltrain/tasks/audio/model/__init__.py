"""The VAE: its two latent layouts and their shared heads, the loss terms, and the priors new
sounds are drawn from (one chunk, and sequences of chunks)."""
