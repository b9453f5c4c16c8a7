"""Demo data: a synthetic customer portfolio whose behaviour precedes its outcomes."""

from tenure.demo.portfolio import KIND_ORDER, PortfolioSpec, generate_portfolio

__all__ = ["KIND_ORDER", "PortfolioSpec", "generate_portfolio"]
