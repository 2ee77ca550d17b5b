"""WSGI entry point for gunicorn: ``gunicorn engine.runtime.wsgi:app``."""
from engine.runtime.app import create_app

app = create_app()
