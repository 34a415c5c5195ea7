"""Finding a person in mail bytes, and the files an erasure deletes (sent mail, exports)."""

from __future__ import annotations

import json
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailroom.privacy.erasure_files import (
    delete_exports,
    export_stem,
    names_address,
    sweep_sent_mail,
)

JO = "jo@school.example"


def message(*, to: str = "sam@other.example", body: str = "Hello\n", cte: str | None = None,
            subject: str = "Hi", message_id: str = "m1@helpline.example") -> bytes:
    msg = EmailMessage()
    msg["From"] = "helpline@helpline.example"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{message_id}>"
    msg.set_content(body, cte=cte) if cte else msg.set_content(body)
    return msg.as_bytes()


@pytest.mark.parametrize(("raw", "named"), [
    (message(to=f"Jo <{JO.upper()}>"), True),
    (message(body=f"Write to {JO} about it\n", cte="base64"), True),
    (message(body=f"{'x' * 70} {JO} é\n", cte="quoted-printable"), True),
    (message(subject=f"About {JO} – é"), True),
    (message(body="Nothing about her\n", cte="base64"), False),
    (message(to="jo@school.example.org"), False),
], ids=["header-any-case", "base64-body", "quoted-printable-split", "rfc2047-subject",
        "someone-else", "longer-domain"])
def test_names_address(raw: bytes, named: bool) -> None:
    assert names_address(raw, JO) is named


def test_names_address_reads_a_returned_message_inside_a_report() -> None:
    inner = message(to=JO, body="Your case\n", cte="base64")
    report = EmailMessage()
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report.set_content("Delivery failed.\n")
    report.add_attachment(inner, maintype="application", subtype="octet-stream")
    attached = report.as_bytes()
    assert JO.encode() not in attached  # base64 all the way down
    assert names_address(attached, JO)


def write(folder: Path, name: str, data: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path


def test_sweep_deletes_mail_to_or_about_them_and_by_message_id(tmp_path: Path) -> None:
    sent = tmp_path / "outbox-sent"
    envelope = b"X-Mailroom-Mail-From: <helpline@helpline.example>\n"
    to_jo = write(sent, "1.eml", envelope + f"X-Mailroom-Rcpt-To: {JO}\n".encode()
                  + message(to="undisclosed-recipients:;"))
    notice = write(sent, "2.eml", message(message_id="notice-7@helpline.example",
                                          body="Her words, without her address\n"))
    naming = write(sent, "3.eml", message(body=f"Cc {JO}\n", cte="base64",
                                          message_id="m3@helpline.example"))
    other = write(sent, "4.eml", message(message_id="m4@helpline.example"))
    not_mail = write(sent, "notes.txt", JO.encode())
    (sent / "5.eml").symlink_to(other)
    sweep = sweep_sent_mail([sent, tmp_path / "missing"], JO, {"notice-7@helpline.example"})
    assert (sweep.deleted, sweep.left_behind) == (3, [])
    assert [p.exists() for p in (to_jo, notice, naming, other, not_mail)] == \
        [False, False, False, True, True]
    assert (sent / "5.eml").is_symlink()


def test_exports_about_them_go_and_nothing_else(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    stem = export_stem(JO)
    theirs = [exports / f"{stem}-20260302T110000Z", exports / f"{stem}-20260302T110000Z-2"]
    for directory in theirs:
        write(directory / "raw", "in-1.eml", b"their mail")
        (directory / "export.json").write_text(json.dumps({"address": JO}))
    lookalike = exports / f"{export_stem(JO + '-2.org')}-20260302T110000Z"
    write(lookalike, "export.json", json.dumps({"address": JO + "-2.org"}).encode())
    sams = exports / f"{export_stem('sam@other.example')}-20260302T110000Z"
    write(sams, "export.json", b"{}")
    (exports / f"{stem}-20260303T110000Z").symlink_to(sams, target_is_directory=True)
    sweep = delete_exports(exports, JO)
    assert (sweep.deleted, sweep.left_behind) == (2, [])
    assert not any(d.exists() for d in theirs)
    assert lookalike.is_dir() and sams.is_dir()


def test_no_export_folder_is_nothing_to_do(tmp_path: Path) -> None:
    sweep = delete_exports(tmp_path / "exports", JO)
    assert (sweep.deleted, sweep.left_behind) == (0, [])
