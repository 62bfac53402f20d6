"""The flows under Prefect: the cross-account deploy, the fleet, reconcile, manual batch release,
every console setting, and the Prefect deployments end to end."""
