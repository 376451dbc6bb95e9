"""The HTTP server: Annif's REST API unchanged (annif.py) and taxonomist's own (api.py), put together by
app.create_app. Nothing is imported here, so that the CLI can read the limits' defaults without the web stack."""
