"""The coordination protocol: pure state transitions and the asyncio engine that drives them."""
