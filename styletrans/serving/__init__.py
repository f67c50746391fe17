"""The HTTP service of ``styletrans serve``: many styles, dynamic batching, limits, metrics.

``styletrans.serving.app.create_app(ServeSettings(...))`` builds the ASGI app. Only the
settings are imported here, so ``styletrans --help`` does not load the web stack.
"""

from styletrans.serving.settings import ServeSettings

__all__ = ["ServeSettings"]
