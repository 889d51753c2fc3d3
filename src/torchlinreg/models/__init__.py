"""More linear models solved from the exact engine's mergeable state.

Every quadratic loss is a function of the centred Gram ``X'WX``, ``X'Wy`` and the weighted
means, which a :class:`~torchlinreg.exact.state.LeastSquaresState` holds whatever the number
of rows: lasso and elastic net by coordinate descent on the Gram (``coordinate``, ``paths``),
k-fold cross-validation from one state per fold (``crossval``), non-negative least squares
(``nonneg``), and Huber's robust regression (``huber``, which needs the rows).
"""
