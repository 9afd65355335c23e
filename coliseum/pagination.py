from rest_framework.pagination import CursorPagination as DrfCursorPagination
from rest_framework.pagination import PageNumberPagination as DrfPageNumberPagination


class PageNumberPagination(DrfPageNumberPagination):
    """`?page=&page_size=`; page_size at most 100 (documented in the README "Limits")."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 100


class CursorPagination(DrfCursorPagination):
    """Newest first, stable under inserts; `?cursor=&page_size=` (at most 100)."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 100
    ordering = "-created_at"
