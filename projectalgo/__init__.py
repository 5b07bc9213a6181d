"""ProjectAlgo: a members-only, live-updating dashboard for trading strategies."""

__version__ = "0.1.0"
