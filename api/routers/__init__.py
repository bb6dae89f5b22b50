"""One django-ninja Router per resource of /api/v1/; api.app mounts them all."""
