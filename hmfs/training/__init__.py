"""Training below the train command: one attempt at a run, its loop, lock, curves, attempts and stopping rule."""
