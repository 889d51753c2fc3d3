"""Formulas and their encodings: Wilkinson formulas to design matrices, kept as plain JSON."""
