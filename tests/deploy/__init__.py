"""A production-like deployment for tests/test_deployment.py: a small HTML app, and the processes that serve it."""
