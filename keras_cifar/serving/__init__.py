"""Using a trained model: `predict` loads `.keras` files and classifies images or arrays;
`exports` writes SavedModel, ONNX and LiteRT (uint8 images in, probabilities out). Never trains.
"""
