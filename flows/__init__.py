"""Prefect flows of sae-crossdeploy: the cross-account deploy and its teardown."""
