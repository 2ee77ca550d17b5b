"""The running system: Flask app, REST API, screens, auth, CLI, Celery. The only package that knows HTTP.

Public surface: :func:`create_app`, :class:`Loom`.
"""


def create_app(loom=None, config=None):
    from engine.runtime.app import create_app as _create
    return _create(loom, config)


def __getattr__(name):
    if name == "Loom":
        from engine.runtime.loom import Loom
        return Loom
    raise AttributeError(name)
