"""The reliability and security scenarios of issue 6 (the rows of docs/RELIABILITY.md): faults,
crashes, concurrency, bad input, secrets, least privilege, sandbox hardening."""
