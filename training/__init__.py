"""Training half of the project: IMDB → shared featurizer → PyTorch model → ONNX artifacts.

``python -m training --data PATH --out DIR`` trains and writes the artifacts;
``python -m training.evaluate --model-dir DIR --data PATH`` rescores them with ONNX Runtime.
This package's ``__init__`` imports nothing heavy: ``training.evaluate`` must run without torch.
"""
