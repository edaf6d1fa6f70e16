"""The web page: static HTML, CSS and JavaScript served by the API app (no build step)."""
