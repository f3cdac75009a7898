"""My projects: list, create, edit, archive or delete, and the file editor."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from config.api.pagination import counted_page
from config.errors import DomainError
from config.forms import add_domain_error
from config.views import domain_errors
from projects import selectors, services
from projects.forms import ProjectFileForm, ProjectForm
from projects.models import Project


def _file_of(project: Project, file_id: int):
    project_file = selectors.project_file_list(project=project).filter(pk=file_id).first()
    if project_file is None:
        raise Http404("File not found.")
    return project_file


@login_required
def project_list(request):
    projects = selectors.project_list_for_user(user=request.user)
    page_obj = counted_page(projects, request.GET.get("page"), 20)
    return render(request, "projects/project_list.html", {"page_obj": page_obj})


@login_required
@require_http_methods(["GET", "POST"])
def project_create(request):
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            project = services.project_create(owner=request.user, **form.cleaned_data)
        except DomainError as exc:
            add_domain_error(form, exc)
        else:
            messages.success(request, f"Project “{project.name}” created. Add its files below.")
            return redirect("projects:detail", pk=project.pk)
    return render(request, "projects/project_form.html", {"form": form})


@login_required
@domain_errors
def project_detail(request, pk):
    project = selectors.project_get_for_user(user=request.user, pk=pk)
    files = selectors.project_file_list(project=project).only("id", "path", "size", "updated_at")
    return render(request, "projects/project_detail.html", {"project": project, "files": files})


@login_required
@domain_errors
@require_http_methods(["GET", "POST"])
def project_edit(request, pk):
    project = selectors.project_get_for_user(user=request.user, pk=pk)
    initial = {"name": project.name, "description": project.description}
    form = ProjectForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.project_update(project=project, **form.cleaned_data)
        except DomainError as exc:
            add_domain_error(form, exc)
        else:
            messages.success(request, "Project saved.")
            return redirect("projects:detail", pk=project.pk)
    return render(request, "projects/project_form.html", {"form": form, "project": project})


@login_required
@domain_errors
@require_http_methods(["POST"])
def project_set_status(request, pk):
    """Archive a project (it leaves the marketplace) or bring it back to active."""
    project = selectors.project_get_for_user(user=request.user, pk=pk)
    status = request.POST.get("status", "")
    try:
        services.project_update(project=project, status=status)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        if status == Project.Status.ARCHIVED:
            messages.success(request, "Project archived; it is no longer on the marketplace.")
        else:
            messages.success(request, "Project is active again. Publish it to list it.")
    return redirect("projects:detail", pk=project.pk)


@login_required
@domain_errors
@require_http_methods(["GET", "POST"])
def project_delete(request, pk):
    project = selectors.project_get_for_user(user=request.user, pk=pk)
    if request.method == "POST":
        name = project.name
        outcome = services.project_delete(project=project)
        if outcome == "archived":
            messages.warning(
                request,
                f"“{name}” has buyers, so it was archived and taken off the marketplace "
                "instead of deleted. Buyers keep access to what they bought.",
            )
        else:
            messages.success(request, f"“{name}” was deleted with its files and chat.")
        return redirect("projects:list")
    has_purchases = project.purchase_count > 0 or project.purchases.exists()
    return render(
        request,
        "projects/project_confirm_delete.html",
        {"project": project, "has_purchases": has_purchases},
    )


@login_required
@domain_errors
@require_http_methods(["GET", "POST"])
def file_create(request, pk):
    project = selectors.project_get_for_user(user=request.user, pk=pk)
    form = ProjectFileForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            project_file = services.project_file_create(project=project, **form.cleaned_data)
        except DomainError as exc:
            add_domain_error(form, exc)
        else:
            messages.success(request, f"Added {project_file.path}.")
            return redirect("projects:detail", pk=project.pk)
    return render(request, "projects/file_form.html", {"form": form, "project": project})


@login_required
@domain_errors
@require_http_methods(["GET", "POST"])
def file_edit(request, pk, file_id):
    project = selectors.project_get_for_user(user=request.user, pk=pk)
    project_file = _file_of(project, file_id)
    form = ProjectFileForm(
        request.POST or None,
        initial={"path": project_file.path, "content": project_file.content},
        editing=True,
    )
    if request.method == "POST" and form.is_valid():
        old_path = project_file.path
        try:
            services.project_file_update(
                project_file=project_file,
                content=form.cleaned_data["content"],
                path=form.cleaned_data["path"],
            )
        except DomainError as exc:
            add_domain_error(form, exc)
        else:
            if project_file.path != old_path:
                messages.success(request, f"Saved and renamed {old_path} to {project_file.path}.")
            else:
                messages.success(request, f"Saved {project_file.path}.")
            return redirect("projects:detail", pk=project.pk)
    return render(
        request,
        "projects/file_form.html",
        {"form": form, "project": project, "project_file": project_file},
    )


@login_required
@domain_errors
@require_http_methods(["GET", "POST"])
def file_delete(request, pk, file_id):
    project = selectors.project_get_for_user(user=request.user, pk=pk)
    project_file = _file_of(project, file_id)
    if request.method == "POST":
        services.project_file_delete(project_file=project_file)
        messages.success(request, f"Deleted {project_file.path}.")
        return redirect("projects:detail", pk=project.pk)
    return render(
        request,
        "projects/file_confirm_delete.html",
        {"project": project, "project_file": project_file},
    )
