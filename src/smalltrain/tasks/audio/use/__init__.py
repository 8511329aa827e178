"""Using a trained model: load, generate, reconstruct, preview, evaluate on a folder, explore
(descriptors, sliders, targets, the map) and export to ONNX."""
