"""The admin's job pages: start a key rotation or a legacy import, and follow a job's progress
(polled with htmx) from any node. Each kind of job needs its power (config/powers.py)."""

from django.contrib import admin, messages
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_http_methods, require_POST

from config import powers
from config.jobs import job_resume, job_stalled
from config.models import Job
from credentials.rotation import key_rotation_start
from legacy.forms import LegacyImportForm
from legacy.imports import legacy_import_start

POWER_OF_KIND = {
    Job.Kind.KEY_ROTATION: powers.ROTATE_KEYS,
    Job.Kind.LEGACY_IMPORT: powers.IMPORT_LEGACY,
}
RECENT = 10


def _context(request, title: str, **extra) -> dict:
    return {**admin.site.each_context(request), "title": title, **extra}


@require_http_methods(["GET", "POST"])
def key_rotation(request):
    powers.require_power(request.user, powers.ROTATE_KEYS)
    if request.method == "POST":
        job, created = key_rotation_start(
            actor=request.user, dry_run=request.POST.get("dry_run") == "1"
        )
        if not created:
            messages.info(request, "A key rotation is already under way: here it is.")
        return redirect("admin-job", pk=job.pk)
    recent = Job.objects.filter(kind=Job.Kind.KEY_ROTATION).select_related("created_by")
    return TemplateResponse(
        request,
        "admin/jobs/key_rotation.html",
        _context(request, "Key rotation", jobs=recent[:RECENT]),
    )


@require_http_methods(["GET", "POST"])
def legacy_import(request):
    powers.require_power(request.user, powers.IMPORT_LEGACY)
    form = LegacyImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        job, created = legacy_import_start(
            actor=request.user,
            upload=form.cleaned_data["dump"],
            skip_invalid=form.cleaned_data["skip_invalid"],
            dry_run=form.cleaned_data["dry_run"],
        )
        if not created:
            messages.warning(
                request, "Another import is under way; start this one when it has finished."
            )
        return redirect("admin-job", pk=job.pk)
    recent = Job.objects.filter(kind=Job.Kind.LEGACY_IMPORT).select_related("created_by")
    return TemplateResponse(
        request,
        "admin/jobs/legacy_import.html",
        _context(request, "Legacy import", form=form, jobs=recent[:RECENT]),
        status=400 if form.errors else 200,
    )


def _job_for(request, pk: int) -> Job:
    job = get_object_or_404(Job.objects.select_related("created_by"), pk=pk)
    powers.require_power(request.user, POWER_OF_KIND[job.kind])
    return job


def _job_context(job: Job) -> dict:
    return {"job": job, "stalled": job_stalled(job)}


@require_http_methods(["GET"])
def job_detail(request, pk: int):
    job = _job_for(request, pk)
    return TemplateResponse(
        request,
        "admin/jobs/job.html",
        _context(request, f"{job.get_kind_display()} #{job.pk}", **_job_context(job)),
    )


@require_http_methods(["GET"])
def job_progress(request, pk: int):
    """The progress box alone: the job page polls it while the job runs."""
    job = _job_for(request, pk)
    return TemplateResponse(request, "admin/jobs/_progress.html", _job_context(job))


@require_POST
def job_resume_view(request, pk: int):
    job = _job_for(request, pk)
    if job_resume(job):
        messages.success(request, "The job was handed to a worker again.")
    else:
        messages.info(request, "The job is not stalled; nothing to resume.")
    return redirect("admin-job", pk=job.pk)


@require_http_methods(["GET"])
def job_report(request, pk: int):
    job = _job_for(request, pk)
    name = (job.result or {}).get("report")
    if not name or not default_storage.exists(name):
        raise Http404("This job has no report.")
    return FileResponse(
        default_storage.open(name, "rb"),
        as_attachment=True,
        filename=f"legacy-import-{job.pk}-report.json",
        content_type="application/json",
    )


key_rotation_view = admin.site.admin_view(key_rotation)
legacy_import_view = admin.site.admin_view(legacy_import)
job_view = admin.site.admin_view(job_detail)
job_progress_view = admin.site.admin_view(job_progress)
job_resume_post = admin.site.admin_view(job_resume_view)
job_report_view = admin.site.admin_view(job_report)
