"""What helpline mail says: case reports, follow-ups, out-of-office notices.

Professionals (teachers, school staff, police, social workers) write to an
online-safety helpline about impersonation accounts, bullying, shared
images, threats. Each language comes with the charset its mailers typically
declare, so the corpus carries Latin-1, Windows-1252, ISO-8859-2, KOI8-R,
ISO-2022-JP and GB2312 as well as UTF-8.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Language:
    """Texts in one language and the charsets mailers declare for it."""

    code: str
    charsets: tuple[str, ...]
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    cases: tuple[tuple[str, str], ...]  # (subject, body with {url} {school} {name})
    replies: tuple[str, ...]
    wrote: str  # attribution line: {date} {name}
    regards: str
    away: tuple[str, str]  # out-of-office (subject prefix, body)


ENGLISH = Language(
    code="en",
    charsets=("utf-8", "us-ascii", "windows-1252", "iso-8859-1"),
    first_names=("Sarah", "James", "Aisha", "Tom", "Priya", "Gareth", "Niamh", "Oluwaseun",
                 "Claire", "Mohammed", "Rebecca", "Daniel", "Siobhan", "Kwame", "Emma"),
    last_names=("Thompson", "Patel", "O'Connor", "Evans", "Okafor", "Hughes", "Khan",
                "Williams", "MacLeod", "Ahmed", "Jones", "Davies", "Nowak", "Clarke"),
    cases=(
        ("Fake account impersonating our head teacher",
         "I am the designated safeguarding lead at {school}. Pupils have told us about an\n"
         "account that uses our head teacher's name and photo and posts offensive\n"
         "comments about staff and pupils:\n\n{url}\n\nWe have reported it through the "
         "app twice, but nothing has happened. The head teacher is very distressed and\n"
         "parents are starting to ask questions. Could you help us get it removed?\n"),
        ("Year 9 group chat - bullying and images",
         "One of our Year 9 pupils has been excluded from a group chat and the others are\n"
         "now sharing edited pictures of her with cruel captions. Her mother showed us\n"
         "the posts this morning. One of them is still up here: {url}\n\n"
         "I have attached screenshots. The pupil is 13. What can we do to get the\n"
         "images taken down, and should we involve the police?\n"),
        ("Video of fight filmed at school posted online",
         "A video of a fight between two of our students, filmed on the school field on\n"
         "Friday, has been posted and shared widely: {url}\n\n"
         "Both students are identifiable and one is in a lot of distress. The account\n"
         "that posted it is anonymous. We would be grateful for any help in having the\n"
         "video removed as quickly as possible.\n"),
        ("Defamatory posts about a member of staff",
         "A parent has been posting false allegations about one of our teaching\n"
         "assistants on a community page, naming her and the school ({school}):\n\n{url}\n\n"
         "The posts have hundreds of comments and some include threats. Our head has\n"
         "asked me to contact you for advice on how to get this looked at.\n"),
        ("Concern about an adult contacting pupils",
         "Several pupils in Year 7 have received friend requests and messages from an\n"
         "account claiming to be a 14 year old, which we believe is an adult:\n{url}\n\n"
         "The messages ask for photos and to move to another app. We have informed\n"
         "the police and CEOP. Can you help to have the account looked at urgently?\n"),
        ("Under-13s' photos on a public account",
         "An account is posting photos of children from our primary school, taken at\n"
         "the school gate and in the park, with their first names: {url}\n\n"
         "None of the parents gave consent. The children are 8 and 9 years old.\n"),
    ),
    replies=(
        "Thank you for your quick reply. The account is still up this morning and has\n"
        "posted again overnight. I have attached a new screenshot.\n",
        "Just to let you know we have a second link now: {url}\n"
        "It seems to be the same person under a new name.\n",
        "I am copying in our head teacher, who has more details about the posts.\n",
        "Good news - the video has been taken down. Thank you so much for your help.\n",
        "Sorry, I forgot to attach the screenshots in my last message. Here they are.\n",
        "The police have given us a reference number, 4471/26, in case the platform\n"
        "asks for it. Is there anything else you need from us?\n",
    ),
    wrote="On {date}, {name} wrote:",
    regards="Kind regards,",
    away=("Automatic reply: ",
          "Thank you for your email. I am out of the office until Monday with limited\n"
          "access to email. For urgent safeguarding matters please call the school office.\n"),
)

GERMAN = Language(
    code="de",
    charsets=("iso-8859-1", "utf-8", "windows-1252"),
    first_names=("Jürgen", "Sabine", "Björn", "Käthe", "Özlem", "Lukas", "Jörg", "Anneliese"),
    last_names=("Müller", "Schröder", "Weiß", "Groß", "Köhler", "Bäcker", "Fuß"),
    cases=(
        ("Gefälschtes Profil unserer Schulleiterin",
         "Sehr geehrte Damen und Herren,\n\nan der {school} kursiert ein gefälschtes Profil "
         "unserer Schulleiterin,\ndas beleidigende Beiträge über Schülerinnen und Schüler "
         "veröffentlicht:\n\n{url}\n\nMehrere Meldungen über die App blieben ohne "
         "Ergebnis. Können Sie uns helfen?\n"),
        ("Mobbing in einer Klassengruppe",
         "Eine Schülerin der 8. Klasse wird in einer Gruppe gemobbt; Fotos von ihr werden\n"
         "mit gemeinen Kommentaren geteilt: {url}\n\nScreenshots hänge ich an. Was können "
         "wir tun?\n"),
    ),
    replies=("Vielen Dank für Ihre schnelle Antwort. Das Profil ist leider immer noch "
             "online.\n",
             "Anbei ein weiterer Screenshot von heute früh.\n"),
    wrote="Am {date} schrieb {name}:",
    regards="Mit freundlichen Grüßen",
    away=("Abwesenheitsnotiz: ",
          "Vielen Dank für Ihre Nachricht. Ich bin bis Montag nicht im Büro und habe\n"
          "nur eingeschränkten Zugriff auf meine E-Mails.\n"),
)

FRENCH = Language(
    code="fr",
    charsets=("windows-1252", "iso-8859-1", "utf-8"),
    first_names=("Hélène", "François", "Amélie", "Jérôme", "Noël", "Cécile", "Loïc"),
    last_names=("Lefèvre", "Dubois", "Bérénger", "Moreau", "Château", "Faure"),
    cases=(
        ("Faux compte usurpant l'identité d'un enseignant",
         "Bonjour,\n\nUn faux compte utilise le nom et la photo d'un enseignant de notre "
         "collège\net publie des messages injurieux : {url}\n\nNous l'avons signalé "
         "plusieurs fois, sans résultat. Pourriez-vous nous aider ?\n"),
    ),
    replies=("Merci pour votre réponse rapide. Le compte est toujours en ligne ce matin.\n",
             "Je vous envoie une nouvelle capture d'écran ci-jointe.\n"),
    wrote="Le {date}, {name} a écrit :",
    regards="Cordialement,",
    away=("Réponse automatique : ",
          "Je suis absente jusqu'à lundi et je n'ai qu'un accès limité à ma messagerie.\n"),
)

POLISH = Language(
    code="pl",
    charsets=("iso-8859-2", "utf-8"),
    first_names=("Małgorzata", "Łukasz", "Agnieszka", "Paweł", "Żaneta"),
    last_names=("Wiśniewska", "Kowalczyk", "Grabowski", "Dąbrowska", "Żak"),
    cases=(
        ("Fałszywe konto nauczycielki",
         "Dzień dobry,\n\nktoś założył fałszywe konto naszej nauczycielki i publikuje "
         "obraźliwe treści\no uczniach: {url}\n\nZgłaszaliśmy je kilka razy. Czy mogą "
         "Państwo pomóc?\n"),
    ),
    replies=("Dziękuję za szybką odpowiedź. Konto nadal jest aktywne.\n",),
    wrote="W dniu {date} {name} napisał(a):",
    regards="Z poważaniem,",
    away=("Odpowiedź automatyczna: ", "Jestem nieobecna do poniedziałku.\n"),
)

RUSSIAN = Language(
    code="ru",
    charsets=("koi8-r", "utf-8"),
    first_names=("Ольга", "Дмитрий", "Наталья", "Сергей"),
    last_names=("Иванова", "Смирнов", "Кузнецова", "Попов"),
    cases=(
        ("Фейковый аккаунт директора школы",
         "Здравствуйте!\n\nКто-то создал фальшивый аккаунт директора нашей школы и "
         "публикует\nоскорбительные сообщения об учениках: {url}\n\nМы несколько раз "
         "жаловались, но аккаунт всё ещё доступен.\nПомогите, пожалуйста.\n"),
    ),
    replies=("Спасибо за ответ. Аккаунт по-прежнему доступен.\n",),
    wrote="{date}, {name} пишет:",
    regards="С уважением,",
    away=("Автоответ: ", "Я в отпуске до понедельника.\n"),
)

JAPANESE = Language(
    code="ja",
    charsets=("iso-2022-jp", "utf-8"),
    first_names=("花子", "太郎", "美咲", "健"),
    last_names=("山田", "佐藤", "鈴木", "高橋"),
    cases=(
        ("校長先生のなりすましアカウントについて",
         "お世話になっております。\n\n本校の校長になりすましたアカウントが、生徒について"
         "\n不適切な投稿を続けています。\n{url}\n\n何度か通報しましたが、削除されません。"
         "\nご助言いただけますと幸いです。\n"),
    ),
    replies=("ご返信ありがとうございます。アカウントはまだ残っています。\n",),
    wrote="{date} {name} さんは書きました:",
    regards="よろしくお願いいたします。",
    away=("自動応答: ", "月曜日まで不在にしております。\n"),
)

CHINESE = Language(
    code="zh",
    charsets=("gb2312", "utf-8"),
    first_names=("伟", "芳", "娜", "敏"),
    last_names=("王", "李", "张", "刘"),
    cases=(
        ("冒充我校校长的假账号",
         "您好：\n\n有人冒充我校校长开设了假账号，并发布有关学生的不当内容：\n{url}\n\n"
         "我们已多次举报，但账号仍未被删除。请问能否提供帮助？\n"),
    ),
    replies=("谢谢您的回复。该账号目前仍然存在。\n",),
    wrote="在 {date}，{name} 写道：",
    regards="此致敬礼",
    away=("自动回复: ", "我将于周一返回办公室。\n"),
)

# (language, weight): most mail to a UK-style helpline is in English.
LANGUAGES = ((ENGLISH, 70), (GERMAN, 7), (FRENCH, 7), (POLISH, 5), (RUSSIAN, 4),
             (JAPANESE, 4), (CHINESE, 3))

SCHOOLS = ("St Mary's C of E Primary School", "Oakfield Academy", "Riverside High School",
           "Holy Trinity Catholic College", "Greenbank Community School", "Ysgol y Berllan",
           "Kingsmead Free School", "Ashton Park Sixth Form")

URLS = (
    "https://www.tiktok.com/@{handle}/video/73{digits}",
    "https://www.instagram.com/{handle}/",
    "https://www.facebook.com/profile.php?id=1000{digits}",
    "https://x.com/{handle}/status/18{digits}",
    "https://www.snapchat.com/add/{handle}",
    "https://www.youtube.com/watch?v={handle}",
    "https://discord.gg/{handle}",
    "https://www.reddit.com/r/{handle}/comments/{digits}/",
    "https://www.roblox.com/users/{digits}/profile",
)

MAIL_DOMAINS = ("school.example.org.uk", "academy.example.sch.uk", "gmail.com", "outlook.com",
                "police.example.uk", "council.example.gov.uk", "btinternet.com", "web.de",
                "orange.fr", "wp.pl", "yandex.ru", "yahoo.co.jp", "163.com", "hotmail.co.uk")
