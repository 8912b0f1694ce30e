"""Bridges to other tools: ConfigSpace (:mod:`.configspace`) and Optuna samplers (:mod:`.optuna`).

Each bridge imports its tool only when used, so the base install works without them
(``pip install 'surrobench[configspace]'`` or ``'surrobench[optuna]'``).
"""
