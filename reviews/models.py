"""Verified reviews and ratings (Step 8). Models arrive with that step."""
