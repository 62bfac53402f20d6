"""SAE 2019-05-06 (ROA): namespaces, secrets, applications and their change orders."""
