"""What runs beside the ``jaxbp`` library: the team's MLflow tracking server launcher (``services.tracking``)
and the batch runner of sweep specs (``services.runner``, behind ``jaxbp batch``).

Not part of the library's API: these modules parse, launch and report; the work is done by ``jaxbp``.
"""
