"""Analysis across scenarios: relative performance, robustness and the agent's objective."""
