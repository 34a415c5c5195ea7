"""What a running helpline leaves on disk is its own account's, and erasure reaches it.

Attacks: reading ``var/`` as another local user (the database used to be
created 0644); finding an erased person in the sent mail and the database file
afterwards. The thorough byte-for-byte scan, with bounces and exports, is
``tests/integration/test_erasure_leaves_nothing.py``; this runs the same
promise against the daemon, as an admin would meet it.
"""

from __future__ import annotations

import stat
from pathlib import Path

from mailroom.cli.main import main as mailroom
from tests.security.helpline import ANNA, Helpline

TEACHER = "kit.marlowe@school.example"
SENTENCE = "Ottoline Vanbrugh in year 9 is being sent messages"


def modes(var: Path) -> dict[str, int]:
    return {str(path.relative_to(var)): stat.S_IMODE(path.stat().st_mode)
            for path in [var, *var.rglob("*")] if not path.is_symlink()}


def test_everything_the_helpline_writes_is_its_own(helpline: Helpline, db_url: str) -> None:
    helpline.write(sender=TEACHER, subject="Messages to a pupil", body=f"{SENTENCE}.\n",
                   attachments=[("screenshot.png", "image/png", b"\x89PNG\r\n\x1a\nfake")])
    var = helpline.app.settings.var_dir
    found = modes(var)
    assert any(name.endswith(".eml") for name in found)  # sent mail is in there
    if db_url.startswith("sqlite"):
        database = Path(db_url.removeprefix("sqlite:///"))
        found |= {p.name: stat.S_IMODE(p.stat().st_mode)
                  for p in database.parent.glob(database.name + "*")}
        assert database.name in found
    wide = {name: oct(mode) for name, mode in found.items() if mode & 0o077}
    assert wide == {}


def test_erasure_reaches_the_sent_mail_and_the_database_file(
    helpline: Helpline, db_url: str,
) -> None:
    helpline.write(sender=TEACHER, subject="Messages to a pupil", body=f"{SENTENCE}.\n")
    helpline.reply(helpline.last_for(ANNA), sender=ANNA, body="Hi Kit, we are looking.\n")
    var = helpline.app.settings.var_dir
    assert any(SENTENCE.encode() in p.read_bytes() for p in var.rglob("*.eml"))
    config = str(helpline.app.settings.source)
    assert mailroom(["--config", config, "erase", "--requester", TEACHER, "--yes"]) == 0
    files = [p for p in var.rglob("*") if p.is_file()]
    if db_url.startswith("sqlite"):
        database = Path(db_url.removeprefix("sqlite:///"))
        files += [p for p in database.parent.glob(database.name + "*") if p.is_file()]
        assert database in files
    for path in files:
        data = path.read_bytes().lower()
        assert TEACHER.encode() not in data, path
        assert SENTENCE.lower().encode() not in data, path
