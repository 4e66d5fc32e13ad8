"""The world's simplest WSGI application, deployed by collective.hostout's example."""

from webob import Request, Response


def main(global_config, **local_conf):
    """The ``paste.app_factory`` entry point (``use = egg:hellowsgi#main``)."""
    return MainApplication()


class MainApplication:
    """An endpoint"""

    def __call__(self, environ, start_response):
        request = Request(environ)  # noqa: F841 - kept from the seed's example
        response = Response("Powered by collective.hostout!")
        return response(environ, start_response)
