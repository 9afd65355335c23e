"""OpenAPI component names for the house style's nested serializers.

Every view nests `InputSerializer` / `OutputSerializer` (STYLE.md), so drf-spectacular's default names
("Output", "InputRequest") collide across views and the schema silently merges different shapes. Nested
serializers are named after their enclosing class instead: `AuthTokenApi.OutputSerializer` becomes
"AuthTokenOutput", `ApiKeyListCreateApi.InputSerializer` "ApiKeyListCreateInput"."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema


class AutoSchema(SpectacularAutoSchema):
    def get_serializer_name(self, serializer: Any, direction: Any) -> str:
        name: str = super().get_serializer_name(serializer, direction)
        cls = serializer if isinstance(serializer, type) else type(serializer)
        outer, _, inner = cls.__qualname__.rpartition(".")
        if outer and "<locals>" not in outer:
            owner = outer.split(".")[-1]
            for suffix in ("Api", "View", "ViewSet"):
                if owner.endswith(suffix) and len(owner) > len(suffix):
                    owner = owner[: -len(suffix)]
                    break
            return f"{owner}{inner}"
        return name
