from django.contrib import admin

from schedules.models import Schedule, ScheduleRun


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    list_display = ["name", "org", "status", "cadence", "amount", "mode", "next_period_start"]
    list_filter = ["status", "cadence"]
    raw_id_fields = ["org", "members", "last_run", "created_by"]
    readonly_fields = ["next_period_start", "last_run"]


@admin.register(ScheduleRun)
class ScheduleRunAdmin(admin.ModelAdmin):
    list_display = ["schedule", "period_start", "status", "members", "credits", "shortfall", "return_state"]
    list_filter = ["status", "return_state"]
    raw_id_fields = ["schedule", "transfer", "return_transfer"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False
