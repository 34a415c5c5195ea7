"""Absence notices without automatic-reply headers: ``classify.vacation_reasons``.

Precision first: every report below that mentions being away must not count,
while the notices (as autoresponders and people write them, in seven
languages) should.
"""

from __future__ import annotations

import pytest

from mailroom.intake.classify import is_vacation_text, vacation_reasons

NOTICES = {
    "en-exchange": "I am out of the office until 17 June with limited access to email.\n"
                   "For urgent safeguarding matters please call the duty team.",
    "en-annual-leave": "I'm currently on annual leave, returning on 3 September. If your "
                       "query is urgent, please contact office@school.example.",
    "en-full": "Thank you for your email. I am currently out of the office with limited "
               "access to email. I will be back on Monday 12th August and will respond to "
               "your message then. For urgent safeguarding concerns please contact the DSL, "
               "Mrs Patel, on 01234 567890.\n\nKind regards\nSam Jones\nHead of Year 9",
    "en-away-until": "Hello, I am away until 05/07/2010 and am unable to read your message.",
    "en-holiday": "I'm on holiday until Monday and will read your message when I am back.",
    "en-training": "Hi,\n\nI am out of the office on a training course today and will reply "
                   "to your email tomorrow.\n\nThanks\nAlex",
    "en-left": "Please note that I have now left St Mary's School. Please direct all "
               "enquiries to admin@stmarys.example.",
    "en-not-monitored": "This mailbox is no longer monitored. Please send your message to "
                        "safeguarding@council.example.",
    "en-school-closed": "The school office is closed for the summer holidays and will reopen "
                        "on 2 September.",
    "en-signature-block": "I am away from the office until Tuesday 2 January.\n\n"
                          "Jo Smith\nHead of Year 7\nSt Mary's School\nTel 01234 567890",
    "en-automatic": "This is an automatic reply. I am out of the office until 4 March.",
    "en-third-person": "Sam Jones is out of the office until Monday 4 March. Your email will "
                       "not be forwarded.",
    "de": "Vielen Dank für Ihre Nachricht. Ich bin bis einschließlich 16.08. nicht im Büro "
          "und habe keinen Zugriff auf meine E-Mails. In dringenden Fällen wenden Sie sich "
          "bitte an das Sekretariat.\n\nMit freundlichen Grüßen\nAnna Schmidt",
    "de-short": "Ich bin bis zum 20. Juni nicht im Büro.",
    "de-urlaub": "Guten Tag, ich bin vom 1. bis 15. August im Urlaub. Ihre Nachricht wird "
                 "nicht weitergeleitet. Ab dem 16. August bin ich wieder erreichbar.",
    "fr": "Bonjour,\nJe suis absent(e) du bureau jusqu'au 26 août inclus. Pour toute "
          "urgence, merci de contacter le secrétariat.\nCordialement",
    "fr-retour": "Je suis absente jusqu'au 20 août. Je prendrai connaissance de votre "
                 "message à mon retour.\nCordialement",
    "es": "Hola, estoy de vacaciones hasta el 1 de septiembre, con acceso limitado al "
          "correo. Para asuntos urgentes, contacte con secretaria@colegio.example.\nSaludos",
    "es-oficina": "Estoy fuera de la oficina hasta el 5 de agosto. Responderé a su mensaje "
                  "a mi regreso.",
    "nl": "Beste afzender,\n\nIk ben met vakantie tot en met 18 augustus. Uw e-mail wordt "
          "niet doorgestuurd. Voor dringende zaken kunt u contact opnemen met de "
          "administratie.\n\nMet vriendelijke groet,\nPieter",
    "nl-afwezig": "Ik ben afwezig tot en met 20 augustus.",
    "it": "Gentile mittente, sono in ferie fino al 25 agosto con accesso limitato alla "
          "posta. Risponderò al mio rientro.\nCordiali saluti",
    "it-ufficio": "Sono fuori ufficio fino al 20 agosto. Per urgenze contattare Maria.",
    "pt": "Olá, estou de férias até 30 de agosto. Responderei à sua mensagem no meu "
          "regresso.",
    "en-parental": "I am on parental leave until January. In my absence please contact "
                   "Mr Hackett.",
    "de-fortbildung": "Ich bin bis Freitag auf Fortbildung. Ab Montag bin ich wieder im Büro.",
    "quoted-history-ignored": "I am out of the office until Monday.\n\n"
                              "> Dear colleague, is the account still up?\n"
                              "> https://www.tiktok.com/@fake",
}

REPORTS = {
    "leave-but-bullied-url": "I'm on leave next week but our pupil is being bullied: "
                             "https://www.instagram.com/fake.account",
    "leave-but-bullied": "I'm on leave next week but our pupil is being bullied by "
                         "classmates on Snapchat.",
    "away-on-a-trip": "I am away on a school trip and a pupil has told me that an account is "
                      "posting edited pictures of her. It is out of office hours; is there a "
                      "number I can ring tonight, or should I wait for your reply?\n\nJo",
    "leave-colleague": "I'm on leave from tomorrow, so please reply to my colleague Sam "
                       "(sam@school.example) who is dealing with the fake account of our "
                       "head teacher.",
    "away-then-report": "I am out of the office until Monday. A pupil has shared a video of "
                        "another pupil being assaulted and it is spreading on TikTok, I need "
                        "advice on getting it removed.",
    "away-then-short-report": "I am out of the office until Monday.\n\nA pupil is being "
                              "bullied.",
    "trip-and-photos": "Hi, I'm away on a school trip this week. One of our year 8 girls has "
                       "had her photos stolen and posted on a fake account. Please advise.\n"
                       "Thanks, Jo",
    "maternity-question": "I am currently on maternity leave but I have been sent screenshots "
                          "of a parent threatening staff. Who should I contact?",
    "forwarded-notice": "Hi, I tried to contact the platform and only got this back:\n\n"
                        "I am out of the office until 3 June.",
    "thanks-but-report": "Thank you for your email. I am out of the office tomorrow, but "
                         "please see the screenshots attached of the account impersonating "
                         "our headteacher, which I reported on Friday.",
    "was-on-holiday": "Sorry for the delay, I was on holiday last week. The account is still "
                      "up.",
    "off-sick-but": "I'm off sick today, but the parent called again about the WhatsApp "
                    "group.",
    "school-closed-but": "Our school is closed for half term but the abuse has continued over "
                         "the holiday on Snapchat, students are sharing the video widely.",
    "de-report": "Ich bin Lehrerin an einer Grundschule und nicht im Büro erreichbar, aber "
                 "ein Schüler wird auf Instagram gemobbt.",
    "fr-report": "Je suis absente demain, mais une élève est harcelée sur Snapchat depuis "
                 "une semaine.",
    "es-report": "Estoy de baja, pero una alumna recibe amenazas en Instagram.",
    "nl-report": "Ik ben afwezig morgen, maar een leerling wordt gepest op TikTok.",
    "it-report": "Sono assente domani ma un alunno viene bullizzato su TikTok.",
    "away-and-still-up": "I'm away until Monday and the account is still up.",
    "away-and-more": "I'm away until Monday and the head wants to speak with you.",
    "autoresponder-receipt": "Thank you for contacting Example Support. Your request has "
                             "been received and will be handled shortly.",
    "out-of-office-hours": "It is out of office hours, so I am writing instead of calling.",
    "empty": "",
}


@pytest.mark.parametrize("text", list(NOTICES.values()), ids=list(NOTICES))
def test_absence_notices_are_recognised(text: str) -> None:
    assert vacation_reasons("", text) == ("text:out-of-office",)


@pytest.mark.parametrize("text", list(REPORTS.values()), ids=list(REPORTS))
def test_reports_that_mention_absence_are_not_notices(text: str) -> None:
    assert vacation_reasons("Fake account of our head teacher", text) == ()


@pytest.mark.parametrize(
    "subject",
    ["Out of Office: Fake account", "Automatic reply: [Helpline #4] Fake account",
     "Abwesenheitsnotiz: Ihre Anfrage", "Réponse automatique : votre message",
     "Risposta automatica: Re: caso"],
    ids=["ooo", "automatic-reply", "abwesenheitsnotiz", "reponse-automatique", "risposta"],
)
def test_absence_subjects_are_recognised(subject: str) -> None:
    assert vacation_reasons(subject, "A pupil is being bullied.") == ("subject:out-of-office",)


def test_both_reasons_when_subject_and_text_agree() -> None:
    assert vacation_reasons("Out of office: hello", NOTICES["en-holiday"]) == (
        "subject:out-of-office", "text:out-of-office")


def test_a_subject_about_office_hours_is_no_notice() -> None:
    assert vacation_reasons("Out of office hours - who do I call about a pupil?", "") == ()


def test_a_long_text_is_no_notice() -> None:
    long = NOTICES["en-holiday"] + "\n\n" + "Jo Smith\n" * 200
    assert is_vacation_text(NOTICES["en-holiday"]) and not is_vacation_text(long)


def test_a_disclaimer_after_the_notice_is_not_read() -> None:
    disclaimer = ("This email and any attachments are confidential and intended solely for "
                  "the addressee. If you have received it in error, please tell the sender "
                  "and delete it. " * 12)
    assert is_vacation_text(NOTICES["en-exchange"] + "\n\n" + disclaimer)
