"""What the tests share that is not a fixture: builders (specs, worlds, SDK clients), helpers
that drive the sandbox, Prefect or a child process, and the suite's pytest plugins (schedule,
contract guard, reliability report), which tests/conftest.py registers."""
