"""The SageMaker model server: ONNX Runtime behind Flask and gunicorn.

Run it with ``python -m serving --model-dir DIR --port P`` (or ``serve`` in the container).
Routes: ``GET /ping``, ``POST /invocations`` and ``POST /endpoints/<name>/invocations``.
Modules: ``model`` (artifacts and scoring), ``inputs`` (one parser per Content-Type),
``app`` (the Flask routes) and ``server`` (the command line and gunicorn).
"""
