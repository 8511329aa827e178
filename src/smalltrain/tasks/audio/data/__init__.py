"""Audio in: loading and scanning files, the training chunks, augmentation, the log-mel and its
inverse, material detection and synthetic sound folders."""
