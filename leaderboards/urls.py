from django.urls import URLPattern, URLResolver, path

from . import apis, views

urlpatterns: list[URLPattern | URLResolver] = [
    path("api/v1/leaderboards", apis.LeaderboardGetApi.as_view(), name="leaderboards"),
    path("api/v1/shows/<int:show_id>/standings", apis.ShowStandingsApi.as_view(), name="show-standings"),
    path("api/v1/realtime", apis.RealtimeGetApi.as_view(), name="realtime"),
    path("jumbotron/", views.jumbotron, name="jumbotron"),
    path("jumbotron/ticket", views.jumbotron_ticket, name="jumbotron-ticket"),
    path("jumbotron/sign-in", views.jumbotron_sign_in, name="jumbotron-sign-in"),
    path("jumbotron/standings", apis.JumbotronStandingsApi.as_view(), name="jumbotron-standings"),
    path("api/v1/jumbotron/share", apis.JumbotronShareApi.as_view(), name="jumbotron-share"),
]
