from django.apps import AppConfig


class ColiseumConfig(AppConfig):
    name = "coliseum"
    verbose_name = "Coliseum core"
