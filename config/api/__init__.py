"""Plumbing shared by every app's API: pagination, errors, throttles, auth endpoints."""
