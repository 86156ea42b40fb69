"""Placeholder: lands with a later issue."""
