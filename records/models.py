"""Encrypted medical records, grants and audit (Step 7). Models arrive with that step."""
