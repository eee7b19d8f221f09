"""The emulator's domain rules, called by the thin HTTP handlers and by the control plane."""
