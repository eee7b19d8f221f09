"""Defining things: asset factories, workspace specs and data, checks, sensors, ops, the translator."""
