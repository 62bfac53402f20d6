"""The `crossdeploy` commands as a user runs them: sandbox, plan/deploy/teardown, demo, webhook
serve, automations apply."""
