"""Helpers shared by the test suites: real media and a real HTTP server."""
