"""The application: the ``jaxbp`` command line, its terminal output, batch jobs, the UI and the tracking-server
launcher. It parses and calls the layers below; nothing below imports it."""

import sys


def main() -> None:
    """Console-script entry point: the command line, or one line saying which extra it needs."""
    try:
        from jaxbp.app.cli import run
    except ImportError as err:
        sys.exit(f"jaxbp: the command line needs {err.name or 'its dependencies'}: pip install 'jaxbp[all]'")
    run()
