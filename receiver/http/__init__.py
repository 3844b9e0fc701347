"""The HTTP edge: the three ports' aiohttp.web applications (webhook, health, metrics).

`app.py` runs them (runners and sites, start and stop); everything else about HTTP, from the
body limit to turning errors into answers, is here."""
