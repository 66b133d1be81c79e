"""The whole service on one machine, through the same code that runs in AWS.

``python -m local_stack --model-dir artifacts --port 8000`` starts the model server
(``python -m serving``) as its own process, then a local API Gateway that serves ``web/``,
turns each API request into a real API Gateway REST proxy event, calls
``lambda_fn.handler.lambda_handler`` with it, and returns the proxy response as HTTP. The
handler reaches the model server through boto3's real ``sagemaker-runtime`` client.
"""
