from django.urls import URLPattern, URLResolver, path

from .consumers import LeaderboardConsumer

websocket_urlpatterns: list[URLPattern | URLResolver] = [
    path("ws/leaderboards/", LeaderboardConsumer.as_asgi()),
]
