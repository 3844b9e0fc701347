"""The HTTP edge: the only aiohttp.web code (webhook port, health port, metrics port)."""
