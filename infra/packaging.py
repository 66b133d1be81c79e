"""What each deployable ships: whole folders of the repository, named once here.

The layout defines what ships: the Lambda zip holds the handler's folder and the shared
package, the model server's image holds the server's folder, the shared package and the
server's pinned requirements. An asset built from these lists changes only when one of its
folders does, so a handler-only edit neither rebuilds nor re-uploads the image.
"""

from __future__ import annotations

LAMBDA_FOLDERS = ("lambda_fn", "sentiment")
IMAGE_PATHS = ("serving", "sentiment", "requirements/serving.txt")


def only(paths: tuple[str, ...]) -> list[str]:
    """The asset excludes (Docker ignore syntax) that keep ``paths`` of the repository root and nothing else."""
    return ["*", *(f"!{path}" for path in paths), "**/__pycache__", "**/*.pyc"]
