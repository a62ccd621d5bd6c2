"""The WSGI entry point: ``gunicorn wsgi:app`` (after ``flask --app wsgi db-upgrade``)."""

from service.app import create_app

app = create_app()
