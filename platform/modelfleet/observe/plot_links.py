"""The deploy report's "Pictures" section: where each model's ``fleet plots`` PNG is.

``fleet plots`` writes ``<model>.png`` per model into one folder (observe/report.py). A report
read next to that folder (a local ``fleet report --markdown --plots DIR > report.md``) links
each PNG relatively. A CI job summary cannot reach the runner's files: the job uploads the
folder as an artifact (actions/upload-artifact, whose ``artifact-url`` output is the
artifact's page), so the section links the artifact once and names the PNGs inside it.
A model without a PNG says so instead: the job does not fail for want of a picture.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote


def picture_of(folder: Path, model: str) -> Path:
    """The PNG ``fleet plots`` writes for ``model`` in ``folder``."""
    return folder / f"{model}.png"


def pictures_markdown(models: list[str], folder: Path, artifact_url: str | None = None) -> str:
    """A ``### Pictures`` section: per model, a relative link to its PNG, or (``artifact_url`` given) the artifact.

    ``artifact_url`` None: a local report, links relative to the folder as given. A string:
    a CI summary; empty when the upload gave no URL (it failed or was skipped), said so.
    """
    drawn = [model for model in models if picture_of(folder, model).is_file()]
    lines = ["### Pictures", ""]
    if artifact_url is not None and drawn:
        if artifact_url:
            lines += [f"[Download the pictures (`fleet plots`, a zip of PNGs)]({artifact_url}); in it:", ""]
        else:
            lines += ["The pictures were drawn but not uploaded (the upload step's log says why):", ""]
    for model in models:
        png = picture_of(folder, model)
        if model not in drawn:
            lines.append(
                f"- **{model}**: no picture: `fleet plots` drew none into `{folder.as_posix()}` (its log says why)"
            )
        elif artifact_url is not None:
            lines.append(f"- **{model}**: `{png.name}`")
        else:
            lines.append(f"- **{model}**: [{png.name}]({quote(png.as_posix())})")
    if not models:
        lines.append("No model to show.")
    return "\n".join([*lines, ""])
