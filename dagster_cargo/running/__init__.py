"""Running things: the resource, the step that drives the client's run handles, re-attachment, healing,
metadata."""
