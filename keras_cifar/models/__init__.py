"""Zoo networks as Keras models: `builder.build_model(spec)` returns a `keras.Sequential` from a
validated `NetworkSpec` (allow-listed layer kinds, PyTorch's or Keras' initialisation);
`inspection` gives `model.summary()` and the report's parameter dump. No training, no files.
"""
