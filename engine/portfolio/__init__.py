"""Portfolios of several assets: the spec, bond buckets, correlated equities, base mixes."""
