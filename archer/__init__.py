"""Archer: dual-token constraints for RL with verifiable rewards (arXiv 2507.15778).

The package is a set of small, swappable components (token classifiers, constraint
strategies, advantage estimators, verifiers, rollout engines) composed by a Lightning
module and configured with Hydra. See DESIGN in the README for the data flow of one step.
"""

__version__ = "0.1.0"
