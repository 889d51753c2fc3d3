import os

# Plots are written with the Agg backend whatever the test machine has.
os.environ.setdefault("MPLBACKEND", "Agg")
