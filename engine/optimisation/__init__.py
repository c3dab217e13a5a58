"""The search over strategy configs: the search space, proposers and the optimisation loop."""
