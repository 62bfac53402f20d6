"""Benchmarks of sae-crossdeploy against a naive baseline (`make bench`, `python -m bench`)."""
