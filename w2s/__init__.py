"""w2s-trust: learning when to trust a weak teacher (weak-to-strong generalization by data selection)."""

__version__ = "0.1.0"
