"""Every template mail is written from, with the variables it may use.

Each template opens with a comment that says what it is for and lists its
context under ``Context:`` (one line a variable: name, type, meaning). The
catalogue reads those comments from every template folder in order (a
helpline's own folder, ``paths.templates``, first; then the shipped ones), so
``mailroom templates list`` shows what an admin may override and with what.
A template in the helpline's folder hides the shipped one of the same name.
Partials (``_name``) are listed too: they are included by others, and a partial's
``Reads: a, b (see those templates)`` line lists the variables it takes from the
template including it, described as the other templates of its folder describe them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["TemplateInfo", "Variable", "template_catalogue"]

_SUFFIXES = (".txt.j2", ".html.j2")
_VARIABLE = re.compile(r"^  (\w+)\s{2,}(\S.*?)\s{2,}(\S.*)$")
_CONTINUED = re.compile(r"^\s{4,}(\S.*)$")
_READS = re.compile(r"\bReads: ([\w, ]+)")


@dataclass(frozen=True)
class Variable:
    name: str
    type: str
    meaning: str


@dataclass
class TemplateInfo:
    name: str  # "requester/acknowledgement"
    formats: list[str]  # "txt", "html"
    source: Path  # the folder it is read from
    overridden: bool  # a helpline's own, in place of a shipped one
    purpose: str  # the first sentence of its comment
    variables: list[Variable] = field(default_factory=list)
    reads: list[str] = field(default_factory=list)  # a partial's: what it takes from others


def template_catalogue(folders: Sequence[Path]) -> list[TemplateInfo]:
    """The templates of ``folders`` (searched in order), by name."""
    found: dict[str, TemplateInfo] = {}
    shipped = folders[-1] if folders else None
    for folder in folders:
        for path in sorted(folder.rglob("*.j2")):
            suffix = next((s for s in _SUFFIXES if path.name.endswith(s)), None)
            if suffix is None:
                continue
            name = str(path.relative_to(folder)).removesuffix(suffix)
            fmt = suffix.split(".")[1]
            info = found.get(name)
            if info is None:
                purpose, variables, reads = _described(path)
                found[name] = TemplateInfo(name, [fmt], folder, folder != shipped, purpose,
                                           variables, reads)
            elif info.source == folder and fmt not in info.formats:
                info.formats.append(fmt)
                if not info.variables:
                    info.purpose, info.variables, info.reads = _described(path)
    for info in found.values():
        if info.reads and not info.variables:
            info.variables = _read_from_others(info, found.values())
    return [found[name] for name in sorted(found)]


def _read_from_others(partial: TemplateInfo, infos: Iterable[TemplateInfo]) -> list[Variable]:
    """A partial's variables, each as the first other template of its folder describes it."""
    folder = partial.name.rsplit("/", 1)[0]
    known: dict[str, Variable] = {}
    for info in sorted(infos, key=lambda i: i.name):
        if info.name.rsplit("/", 1)[0] == folder:
            for variable in info.variables:
                known.setdefault(variable.name, variable)
    return [known.get(name, Variable(name, "", "")) for name in partial.reads]


def _described(path: Path) -> tuple[str, list[Variable], list[str]]:
    """The purpose line, the ``Context:`` variables and a partial's ``Reads:`` names of a
    template's opening comment."""
    source = path.read_text(encoding="utf-8", errors="replace")
    if not source.startswith("{#") or "#}" not in source:
        return "", [], []
    lines = source[2:source.index("#}")].strip("\n").splitlines()
    opening = []
    for line in lines:
        if not line.strip() or line.strip() == "Context:":
            break
        opening.append(line.strip())
    purpose = " ".join(opening).split(":", 1)[-1].strip()
    reads = _READS.search(" ".join(opening))
    names = re.findall(r"\w+", reads.group(1)) if reads else []
    variables: list[Variable] = []
    in_context = False
    for line in lines:
        if line.strip() == "Context:":
            in_context = True
            continue
        match = _VARIABLE.match(line) if in_context else None
        if match:
            variables.append(Variable(*match.groups()))
        elif in_context and variables and (more := _CONTINUED.match(line)):
            last = variables[-1]
            variables[-1] = Variable(last.name, last.type, f"{last.meaning} {more.group(1)}")
    return purpose, variables, names
