"""The sandbox cloud through the official SDKs and raw HTTP: signatures, STS, RAM, CR, VPC, SAE
apps and secrets, the image-pull judgment, the policy evaluator, the API contract and response
models, faults, latency, regions, persistence, world files, the pytest plugin."""
