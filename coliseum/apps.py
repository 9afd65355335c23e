from django.apps import AppConfig


class ColiseumConfig(AppConfig):
    name = "coliseum"
    verbose_name = "Coliseum core"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from .rls import connection_prepare

        # Every connection drops to the application role before its first query (row-level security).
        connection_created.connect(connection_prepare, dispatch_uid="coliseum.rls.connection_prepare")
