"""Many fits at once: one regression per group (batched) and over rolling windows."""
