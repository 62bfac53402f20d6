"""What runs share through the Prefect server: the app lock (lease renewal, server restart), the
SAE quota, the deploy ledger, and our Prefect API client over TLS."""
