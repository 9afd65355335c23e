#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coliseum.settings.local")
    from django.core.management import execute_from_command_line

    from coliseum.rls import system_scope

    # Management commands are the operator's (seed_demo, import_events, create_tenant, process_events...):
    # they act for every tenant (row-level security bypass, coliseum/rls.py). Only this thread's connection:
    # `runserver` serves requests on other threads, each with its own connection and the request scopes.
    with system_scope("management command"):
        execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
