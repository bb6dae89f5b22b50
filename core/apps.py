import logging

from django.apps import AppConfig
from django.conf import settings
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache
from django.utils.module_loading import import_string

log = logging.getLogger("credits.core")

PER_PROCESS_CACHES = (LocMemCache, DummyCache)


def warn_if_cache_is_per_process() -> bool:
    """A warning when rate limits would be counted per process: the default cache is local memory (or the
    dummy cache, which counts nothing) while DEBUG is off, so every gunicorn worker admits the full limit.
    True when it warned."""
    backend = import_string(settings.CACHES["default"]["BACKEND"])
    if settings.DEBUG or not issubclass(backend, PER_PROCESS_CACHES):
        return False
    log.warning(
        "CACHES['default'] is %s with DEBUG off: rate limits are counted per process, so each process "
        "(gunicorn worker) admits the whole limit. Unset CACHE_URL for the shared database cache, or point it "
        "at Redis.",
        backend.__name__,
    )
    return True


class CoreConfig(AppConfig):
    """core is an app for its start-up check and its migration (the database cache's table), no models."""

    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        warn_if_cache_is_per_process()  # once per process, at start-up
