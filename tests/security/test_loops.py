"""No loop with an autoresponder that wears no automatic-reply headers.

Attack: an autoresponder answering each acknowledgement from a new address,
quoting it, without ``Auto-Submitted`` or any such header (it used to go on
for 50 rounds: 51 cases, 51 acknowledgements, a subject growing a tag a
round). The circuit breaker must stop the acknowledgements; every subject
must carry one tag.
"""

from __future__ import annotations

import re

from tests.security.helpline import Helpline

ROUNDS = 12
NOTICE = ("Thank you for your message. Your enquiry has been received and will be "
          "dealt with as soon as possible by the appropriate team.")


def test_an_autoresponder_on_new_addresses_is_cut_off(helpline: Helpline) -> None:
    per_window = helpline.app.settings.ack_same_content_per_window
    helpline.write(sender="robot0@auto.example", subject="Enquiry", body=NOTICE + "\n")
    for round_number in range(1, ROUNDS):
        acks = [s for s in helpline.sent() if s.recipients[0].startswith("robot")]
        last = acks[-1] if acks else None
        if last is None:
            break
        quoted = "\n".join(f"> {line}" for line in last.text.splitlines())
        # To the helpline's address, with the subject but without In-Reply-To, as some
        # autoresponders write: it threads nowhere and would open a case each round.
        helpline.write(sender=f"robot{round_number}@auto.example", subject=f"Re: {last.subject}",
                       body=f"{NOTICE}\n\n{quoted}\n")
        if len([s for s in helpline.sent() if s.recipients[0].startswith("robot")]) == len(acks):
            break  # no acknowledgement this round: the loop is over
    acknowledgements = [s for s in helpline.sent() if s.recipients[0].startswith("robot")]
    assert len(acknowledgements) == per_window
    for sent in helpline.sent():
        assert len(re.findall(r"\[Helpline #\d+\]", sent.subject)) == 1, sent.subject
