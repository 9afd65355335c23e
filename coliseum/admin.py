"""Admin for the core models. Audited writes (memberships, key revocation) go through services."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.forms import BaseInlineFormSet, ModelForm
from django.http import HttpRequest

from .models import ApiKey, Artist, Membership, Show, Tenant
from .services import api_key_revoke, membership_create, membership_remove, membership_role_change

admin.site.site_header = "Coliseum administration"
admin.site.site_title = "Coliseum admin"
admin.site.index_title = "Operations"


def _save_membership(request: HttpRequest, obj: Membership, change: bool) -> None:
    if change and obj.pk:
        membership_role_change(membership=obj, role=obj.role, actor=request.user, request=request)  # type: ignore[arg-type]
    else:
        created = membership_create(
            tenant=obj.tenant,
            user=obj.user,
            role=obj.role,
            actor=request.user,  # type: ignore[arg-type]
            request=request,
        )
        obj.pk = created.pk


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    fields = ("user", "role", "created_at")
    readonly_fields = ("created_at",)
    autocomplete_fields = ("user",)


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "plan", "reporting_currency", "timezone", "member_count", "created_at")
    list_filter = ("plan", "reporting_currency")
    search_fields = ("slug", "name")
    # The plan in force is billing's to decide (operator assignment in "Billing accounts", or Stripe).
    readonly_fields = ("plan", "created_at")
    inlines = [MembershipInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tenant]:
        from django.db.models import Count

        return super().get_queryset(request).annotate(_members=Count("memberships"))  # type: ignore[return-value]

    @admin.display(description="members", ordering="_members")
    def member_count(self, obj: Tenant) -> int:
        return int(getattr(obj, "_members", 0))

    def save_formset(
        self, request: HttpRequest, form: ModelForm, formset: BaseInlineFormSet, change: bool
    ) -> None:
        if formset.model is not Membership:
            super().save_formset(request, form, formset, change)
            return
        instances = formset.save(commit=False)
        for obj in formset.deleted_objects:
            membership_remove(membership=obj, actor=request.user, request=request)  # type: ignore[arg-type]
        for obj in instances:
            _save_membership(request, obj, change=bool(obj.pk))
        formset.save_m2m()


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "tenant", "role", "created_at")
    list_filter = ("role", "tenant__plan")
    search_fields = ("user__username", "tenant__slug", "tenant__name")
    autocomplete_fields = ("user", "tenant")
    list_select_related = ("user", "tenant")

    def save_model(self, request: HttpRequest, obj: Membership, form: ModelForm, change: bool) -> None:
        _save_membership(request, obj, change)

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        membership_remove(membership=obj, actor=request.user, request=request)  # type: ignore[arg-type]

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        for obj in queryset.select_related("tenant"):
            membership_remove(membership=obj, actor=request.user, request=request)  # type: ignore[arg-type]


@admin.register(Artist)
class ArtistAdmin(admin.ModelAdmin):
    list_display = ("name", "external_id", "tenant", "home_city", "genre_list", "created_at")
    list_filter = ("tenant",)
    search_fields = ("name", "external_id", "home_city")
    list_select_related = ("tenant",)
    readonly_fields = ("created_at",)

    @admin.display(description="genres")
    def genre_list(self, obj: Artist) -> str:
        return ", ".join(obj.genres)


class ShowAdminForm(ModelForm):
    class Meta:
        model = Show
        fields = ("tenant", "external_id", "title", "venue", "city", "starts_at", "lineup")

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        tenant = cleaned.get("tenant")
        strangers = [
            a.name for a in cleaned.get("lineup") or [] if tenant is not None and a.tenant_id != tenant.pk
        ]
        if strangers:
            # Tenants never share data: a lineup may only hold the show's own tenant's artists.
            raise ValidationError({"lineup": f"Not artists of {tenant}: {', '.join(strangers)}."})
        return cleaned


@admin.register(Show)
class ShowAdmin(admin.ModelAdmin):
    form = ShowAdminForm
    list_display = ("title", "external_id", "tenant", "venue", "city", "starts_at", "lineup_size")
    list_filter = ("tenant", "city")
    search_fields = ("title", "external_id", "venue", "city")
    date_hierarchy = "starts_at"
    autocomplete_fields = ("lineup",)
    list_select_related = ("tenant",)
    readonly_fields = ("created_at",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Show]:
        from django.db.models import Count

        return super().get_queryset(request).annotate(_lineup=Count("lineup"))  # type: ignore[return-value]

    @admin.display(description="lineup", ordering="_lineup")
    def lineup_size(self, obj: Show) -> int:
        return int(getattr(obj, "_lineup", 0))


class ApiKeyStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("active", "Active"), ("revoked", "Revoked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> QuerySet[ApiKey]:
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Secrets are never displayed (only digests/ciphertexts are stored anyway, and those are hidden too).
    Keys are issued through the API or `create_tenant`, where the secret is shown once."""

    list_display = ("key_id", "kind", "name", "tenant", "created_by", "created_at", "last_used_at", "active")
    list_filter = (ApiKeyStatusFilter, "kind", "tenant")
    search_fields = ("key_id", "name", "tenant__slug")
    list_select_related = ("tenant", "created_by")
    fields = ("key_id", "kind", "name", "tenant", "created_by", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("key_id", "kind", "tenant", "created_by", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoke instead: the audit trail keeps pointing at the key

    @admin.display(boolean=True, description="active")
    def active(self, obj: ApiKey) -> bool:
        return obj.is_active

    @admin.action(description="Revoke selected keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        count = 0
        for key in queryset.filter(revoked_at__isnull=True).select_related("tenant"):
            api_key_revoke(key=key, actor=request.user, request=request)  # type: ignore[arg-type]
            count += 1
        self.message_user(request, f"Revoked {count} key(s).", messages.SUCCESS)
