"""pytest: the real PostgreSQL and Redis, a Redis database of its own so tests never touch dev data."""

from .base import *  # noqa: F403
from .base import CACHES, CHANNEL_LAYERS, env, env_path

DEBUG = False
REDIS_URL = env.str("TEST_REDIS_URL", default="redis://127.0.0.1:6379/15")
CACHES["default"]["LOCATION"] = REDIS_URL
# Only the address changes: the connection options are the ones that ship (see CHANNEL_LAYER_REDIS_OPTIONS).
CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] = [  # type: ignore[index]
    {**host, "address": REDIS_URL}
    for host in CHANNEL_LAYERS["default"]["CONFIG"]["hosts"]  # type: ignore[index]
]
CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_ALWAYS_EAGER = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast; Argon2 is tested explicitly
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
LOGGING_CONFIG = None  # keep pytest output readable
PRIVATE_STORAGE_ROOT = env_path("TEST_PRIVATE_STORAGE_ROOT", default="/tmp/coliseum-test-private")  # noqa: S108
