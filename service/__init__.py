"""评分引擎: the scoring engine service.

``service.domain`` is the scoring core (no framework); ``service.rulefiles`` reads rule files;
``service.engine`` wraps durable-rules; ``service.operations`` is the service layer;
``service.api`` and ``admin`` are the HTTP adapters; ``service.app.create_app()`` puts them
together (``wsgi.py``).
"""
