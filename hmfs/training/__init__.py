"""Training bookkeeping below the train command: attempts, stop signals, the no-progress guard."""
