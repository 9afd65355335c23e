"""Production: everything from base, tightened. Secrets have no default: a missing one stops the process."""

from .base import *  # noqa: F403
from .base import env

DEBUG = False
SECRET_KEY = env.str("SECRET_KEY")  # required
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")  # required
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# --- coliseum core ---
DEMO_PASSWORD = ""  # no demo accounts with a published password in production (seed_demo refuses)

# --- privacy ---
ADMIN_MFA_REQUIRED = env.bool("ADMIN_MFA_REQUIRED", default=True)  # TOTP for staff in the admin
