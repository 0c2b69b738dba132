"""Synthetic workplace database for the quick-start demo (data only; written for m2rl-slime)."""
