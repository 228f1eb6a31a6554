"""Output file name prefixes: what a workflow may ask for (checked without touching the disk)."""
import re

PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$")


def check_prefix(prefix):
    """Error message for a filename prefix that could leave the output folder, or None."""
    if not prefix:
        return "must not be empty"
    if "\\" in prefix or prefix.startswith("/") or re.match(r"^[A-Za-z]:", prefix):
        return "must be a relative name inside the output folder (no absolute paths or backslashes)"
    parts = prefix.split("/")
    if len(parts) > 4:
        return "at most 3 sub-folders"
    for part in parts:
        if part in ("", ".", ".."):
            return "must not contain '..', '.' or empty path parts"
        if not PART.match(part) or part.endswith((".", " ")):
            return (f"{part!r}: use letters, digits, space, '.', '_' and '-' (starting with a letter "
                    "or digit), at most 100 characters a part")
    return None
