"""Web modules: each file here that defines a Flask blueprint ``bp`` is registered by the app
factory (in file-name order), and its ``init_app(app)`` is called if it has one. Adding a screen or
an API area is adding a file; nothing else needs to change."""
