"""The synthesized stack on one machine, through the same code that runs in AWS, no Docker.

``python -m local_stack --template cdk.out/ServerlessSentiment.template.json`` (``make demo``)
reads the CloudFormation template ``cdk synth`` wrote (``local_stack.template``) and runs it: the
REST API as API Gateway would (``local_stack.gateway``: routes, stages, throttling, gateway
responses, the firewall's rate rule), its function in Lambda-like execution environments, one
process each, created on demand (``local_stack.lambda_runtime``, ``local_stack.bootstrap``), the
SageMaker model as ``python -m serving`` on the model data the template deploys
(``local_stack.model_server``), and the website as CloudFront serves it (``local_stack.website``).
What the template holds that cannot be emulated is named at start-up. ``invoke`` and
``generate-event`` run one event through the function, as ``sam local`` does.
"""
